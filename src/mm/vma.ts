import type { Co } from '../kernel/task.ts';
import {
  hex,
  VM_IO,
  VM_MAYWRITE,
  VM_MIXEDMAP,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './constants.ts';
import type { File } from './file.ts';
import type { Mm } from './mm.ts';
import type { Page } from './page.ts';

/** What a vm_operations_struct ->fault handler returns: a frame or a device pfn to map. */
export type VmFaultResult =
  | { readonly page: Page }
  | { readonly pfn: number; readonly writable: boolean };

/**
 * vm_operations_struct: hooks a driver attaches to the VMAs it maps. `open` runs when a VMA
 * is duplicated (split, fork, mremap move), `close` when one goes away (munmap, exit).
 */
export interface VmOps {
  readonly name: string;
  open?(vma: Vma): Co;
  close?(vma: Vma): Co;
  fault?(vma: Vma, addr: number, write: boolean): Co<VmFaultResult>;
}

/** A virtual memory area (`struct vm_area_struct`): [start, end) with flags and backing. */
export class Vma {
  /** A number unique in the machine, for reports and the vma-free event. */
  readonly id: number;
  readonly mm: Mm;
  start: number;
  end: number;
  flags: number;
  /** The mapped file (shmem file for shared anonymous memory), or null for private anon. */
  readonly file: File | null;
  /** vm_pgoff: file page index of `start`. */
  pgoff: number;
  ops: VmOps | null;
  /** vm_private_data for drivers. */
  privateData: unknown = null;

  constructor(mm: Mm, start: number, end: number, flags: number, file: File | null, pgoff: number) {
    this.id = mm.machine.allocVmaId();
    this.mm = mm;
    this.start = start;
    this.end = end;
    this.flags = flags;
    this.file = file;
    this.pgoff = pgoff;
    this.ops = null;
  }

  /** True for private anonymous memory (no file). */
  get isAnon(): boolean {
    return this.file === null && (this.flags & (VM_PFNMAP | VM_MIXEDMAP)) === 0;
  }

  get isShared(): boolean {
    return (this.flags & VM_SHARED) !== 0;
  }

  /** is_cow_mapping(): private and may be written. */
  get isCow(): boolean {
    return (this.flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
  }

  /** VM_IO or VM_PFNMAP: no struct pages to fault or pin. */
  get isIoOrPfnmap(): boolean {
    return (this.flags & (VM_IO | VM_PFNMAP)) !== 0;
  }

  get readable(): boolean {
    return (this.flags & VM_READ) !== 0;
  }

  get writable(): boolean {
    return (this.flags & VM_WRITE) !== 0;
  }

  /** File page index of `addr` (linear_page_index()). */
  pageIndex(addr: number): number {
    return this.pgoff + (addr - this.start) / 4096;
  }

  toString(): string {
    return `[${hex(this.start)}, ${hex(this.end)})`;
  }
}
