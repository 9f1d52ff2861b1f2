import type { Kernel } from '../kernel/kernel.ts';
import { Srcu } from '../kernel/sync/srcu.ts';
import { WaitQueue } from '../kernel/sync/wait-queue.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import './events.ts';
import { File, type FileOps } from './file.ts';
import { Mm } from './mm.ts';
import type { ItreeDispatch } from './mmu-interval-tree-state.ts';
import type { Page, PageKind } from './page.ts';
import { PageData } from './page-data.ts';
import { PhysMem } from './phys-mem.ts';
import { shrinkMemory } from './reclaim.ts';
import { SwapSpace } from './swap.ts';

/** Options of a simulated machine's memory. */
export interface MachineOptions {
  /** Allocatable frames (default 65,536). */
  readonly frames?: number;
  /** Swap slots (default 2^20). */
  readonly swapSlots?: number;
  /** Run direct reclaim when an allocation finds no free frame (default true). */
  readonly reclaimOnPressure?: boolean;
  /** Interval-notifier dispatch: the tree (default) or the linear list kept for benchmarks. */
  readonly notifierDispatch?: ItreeDispatch;
}

/**
 * The memory of one simulated machine: physical frames, swap, the SRCU domain of the classic
 * MMU notifiers, and every address space and file. Build one per world.
 */
export class Machine {
  readonly kernel: Kernel;
  readonly phys: PhysMem;
  readonly swap: SwapSpace;
  /** The global `srcu` of mm/mmu_notifier.c. */
  readonly notifierSrcu = new Srcu('mmu_notifier_srcu');
  /** Where faults on migration entries wait (migration_entry_wait()). */
  readonly migrationWait = new WaitQueue('migration');
  readonly mms: Mm[] = [];
  readonly files: File[] = [];
  readonly reclaimOnPressure: boolean;
  readonly notifierDispatch: ItreeDispatch;
  private nextRangeId = 1;
  private readonly devicePages = new Map<number, PageData>();
  private nextDevicePfn = 1 << 40;

  constructor(kernel: Kernel, options: MachineOptions = {}) {
    this.kernel = kernel;
    const frames = options.frames ?? 65_536;
    if (!Number.isSafeInteger(frames) || frames < 1)
      throw new Errno('EINVAL', `frames must be a positive integer, got ${frames}`);
    this.phys = new PhysMem({ frames });
    this.swap = new SwapSpace(options.swapSlots ?? 1 << 20);
    this.reclaimOnPressure = options.reclaimOnPressure ?? true;
    this.notifierDispatch = options.notifierDispatch ?? 'tree';
  }

  /** mm_alloc(): a new, empty address space with mm_users = mm_count = 1. */
  createMm(): Mm {
    const mm = new Mm(this, this.mms.length + 1);
    this.mms.push(mm);
    if (this.kernel.trace.on) this.kernel.trace.emit('mm-create', { mm: mm.id });
    return mm;
  }

  /** A regular file (or, with `ops`, a device file whose ->mmap the driver provides). */
  createFile(
    name: string,
    options: { size?: number; writable?: boolean; ops?: FileOps; shmem?: boolean } = {},
  ): File {
    const f = new File(this, this.files.length + 1, name, options);
    this.files.push(f);
    return f;
  }

  /**
   * Device frames outside the allocator (a BAR, device memory) for VM_PFNMAP mappings: returns
   * the first of `count` new device pfns.
   */
  allocDevicePfns(count: number): number {
    const first = this.nextDevicePfn;
    this.nextDevicePfn += count;
    return first;
  }

  /** The contents of a device frame (created on first use). */
  deviceMemory(pfn: number): PageData {
    let d = this.devicePages.get(pfn);
    if (d === undefined) {
      d = new PageData();
      this.devicePages.set(pfn, d);
    }
    return d;
  }

  /** A fresh id pairing an invalidation's start with its end. */
  rangeId(): number {
    return this.nextRangeId++;
  }

  /**
   * alloc_page(GFP_KERNEL)-like: a frame, running direct reclaim under pressure (which may
   * sleep). Null when nothing could be freed: the caller reports ENOMEM / VM_FAULT_OOM.
   */
  *allocPage(kind: PageKind): Co<Page | null> {
    let page = this.phys.alloc(kind);
    if (page === null && this.reclaimOnPressure) {
      yield* shrinkMemory(this, 32);
      page = this.phys.alloc(kind);
    }
    return page;
  }
}
