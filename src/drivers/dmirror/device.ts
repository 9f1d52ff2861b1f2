import type { Co } from '../../kernel/task.ts';
import { Errno } from '../../lib/errors.ts';
import { PAGE_SIZE, VM_MIXEDMAP } from '../../mm/constants.ts';
import type { File } from '../../mm/file.ts';
import type { Machine } from '../../mm/machine.ts';
import type { Vma } from '../../mm/vma.ts';
import { DmirrorDevmem } from './devmem.ts';
import { dmirrorDevmemFault } from './migrate.ts';

/**
 * struct dmirror_device: one of the hmm_dmirror0..3 character devices, with its device-private
 * memory (the model gives all four private memory: Linux's 2–3 are coherent, which it lacks).
 * The device itself is the pgmap owner of its pages.
 */
export class DmirrorDevice {
  readonly machine: Machine;
  readonly index: number;
  readonly name: string;
  /** The character device file; its ->mmap is dmirror_fops_mmap(). */
  readonly file: File;
  /** Opens so far: names each mirror (`hmm_dmirror0#1`, ...). */
  opens = 0;
  /** The device memory: chunks of device-private pages (dmirror_device_init()). */
  readonly devmem: DmirrorDevmem;

  constructor(machine: Machine, index: number) {
    if (!Number.isInteger(index) || index < 0 || index > 3)
      throw new Errno('ENODEV', `no hmm_dmirror${index}: devices are 0 to 3`);
    this.machine = machine;
    this.index = index;
    this.name = `hmm_dmirror${index}`;
    this.devmem = new DmirrorDevmem(machine, this, dmirrorDevmemFault);
    const self = this;
    this.file = machine.createFile(`/dev/${this.name}`, {
      ops: {
        *mmap(_file: File, vma: Vma): Co {
          yield* self.mmap(vma);
        },
      },
    });
  }

  /**
   * dmirror_fops_mmap(): a zeroed kernel page for each page of the VMA, inserted with
   * vm_insert_page() (which makes the VMA VM_MIXEDMAP). In a private mapping the entries are
   * read-only (COW); the page is freed when its last mapping goes.
   */
  private *mmap(vma: Vma): Co {
    vma.flags |= VM_MIXEDMAP;
    const mm = vma.mm;
    const writable = vma.isShared && vma.writable;
    for (let addr = vma.start; addr < vma.end; addr += PAGE_SIZE) {
      const page = yield* this.machine.allocPage('kernel');
      if (page === null) {
        yield* this.unwind(vma, addr);
        throw new Errno('ENOMEM', `${this.name}: no page for mmap`);
      }
      yield* mm.ptl.lock();
      mm.setPte(addr, {
        kind: 'page',
        page,
        swap: 0,
        pfn: 0,
        readable: true,
        writable,
        dirty: false,
        accessed: false,
      });
      mm.ptl.unlock();
    }
  }

  /** Undoes a partial mmap: the pages inserted below `upTo` are unmapped and freed. */
  private *unwind(vma: Vma, upTo: number): Co {
    const mm = vma.mm;
    yield* mm.ptl.lock();
    const pages = [];
    for (let addr = vma.start; addr < upTo; addr += PAGE_SIZE) {
      const pte = mm.clearPte(addr);
      if (pte?.page) pages.push(pte.page);
    }
    mm.ptl.unlock();
    for (const p of pages) this.machine.phys.put(p);
  }
}
