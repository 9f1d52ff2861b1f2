import { charge } from '../cost/charge.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Srcu } from '../kernel/sync/srcu.ts';
import { WaitQueue } from '../kernel/sync/wait-queue.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { HPAGE_PMD_NR } from './constants.ts';
import './events.ts';
import { File, type FileOps } from './file.ts';
import { Mm } from './mm.ts';
import type { ItreeDispatch } from './mmu-interval-tree-state.ts';
import type { Page, PageKind } from './page.ts';
import { PageData } from './page-data.ts';
import { PFN_SPAN, PhysMem } from './phys-mem.ts';
import type { Process } from './process.ts';
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
  /**
   * The notifier core of 3.19–5.3, which the 2014 and interim ODP designs ran on (default
   * false: today's core). There a failed non-blockable start is only reported: no end for the
   * subscribers whose start succeeded and no WARN on a failing subscriber that has an end
   * (both c2655835fd8c, v5.13); range_end callbacks may sleep even for a non-blockable
   * range (non_block_start() around them came in v5.4); and the lockdep map of
   * invalidate_range_start covers the start only (5.4 extended it to range_end).
   */
  readonly legacyNotifierCore?: boolean;
  /**
   * fork() copies DMA-pinned anonymous pages for the child at once (default true, since
   * 70e806e4e645, v5.9), so the parent keeps the page its pin holds. False is the earlier
   * behaviour: the page is shared copy-on-write and the parent's next write moves it to a new
   * page, away from the pin (the RDMA fork problem).
   */
  readonly earlyCowPinned?: boolean;
  /**
   * When a classic subscriber refuses a non-blockable start after the interval side began, end
   * the interval side too (default false: no kernel does; docs/findings/itree-nonblock-leak.md).
   */
  readonly unwindItreeOnRefusal?: boolean;
  /**
   * CPU accesses go through per-CPU TLBs that only a flush empties (default true). False is
   * the model before TLBs: every access walks the page table, so a changed entry takes
   * effect at once (kept for the benchmark's comparison).
   */
  readonly cpuTlbs?: boolean;
}

/** Machines and address spaces built on each kernel so far (ids and pfn ranges stay unique). */
const perKernel = new WeakMap<Kernel, { machines: number; mms: number }>();

function counters(k: Kernel): { machines: number; mms: number } {
  let c = perKernel.get(k);
  if (c === undefined) {
    c = { machines: 0, mms: 0 };
    perKernel.set(k, c);
  }
  return c;
}

/** First pfn of device memory (BARs, device-private pages): above every machine's frames. */
export const DEVICE_PFN_BASE = 2 ** 40;
/** Where device-private pfns start in a machine's span: above any allocatable frame in use. */
const DEVICE_PRIVATE_PFN_OFFSET = 2 ** 31;

/**
 * The memory of one simulated machine: physical frames, swap, the SRCU domain of the classic
 * MMU notifiers, and every address space and file. A world has one, or several connected by
 * devices (RDMA); their frames, device pfns and address-space ids are disjoint.
 */
export class Machine {
  readonly kernel: Kernel;
  readonly phys: PhysMem;
  readonly swap: SwapSpace;
  /** The global `srcu` of mm/mmu_notifier.c. */
  readonly notifierSrcu = new Srcu('mmu_notifier_srcu');
  /** Where faults on migration entries wait (migration_entry_wait()). */
  readonly migrationWait = new WaitQueue('migration');
  /** Where folio_lock() waits for a page's lock (woken by every {@link unlockPage}). */
  readonly pageLockWait = new WaitQueue('page-lock');
  readonly mms: Mm[] = [];
  readonly files: File[] = [];
  /** Every process made on this machine; one whose `mm` is set still holds an mm_users reference. */
  readonly processes: Process[] = [];
  readonly reclaimOnPressure: boolean;
  readonly notifierDispatch: ItreeDispatch;
  readonly legacyNotifierCore: boolean;
  readonly earlyCowPinned: boolean;
  readonly unwindItreeOnRefusal: boolean;
  readonly cpuTlbs: boolean;
  /** This machine's number in its world (0 for the first). */
  readonly index: number;
  private nextRangeId = 1;
  private nextPid = 1;
  private nextVmaId = 1;
  private readonly devicePages = new Map<number, PageData>();
  private nextDevicePfn: number;
  private nextDevicePrivate = 0;

  constructor(kernel: Kernel, options: MachineOptions = {}) {
    this.kernel = kernel;
    const frames = options.frames ?? 65_536;
    if (!Number.isSafeInteger(frames) || frames < 1)
      throw new Errno('EINVAL', `frames must be a positive integer, got ${frames}`);
    const c = counters(kernel);
    this.index = c.machines++;
    // The huge zero page's 512 frames follow the allocatable ones, below device-private pfns.
    if (frames + HPAGE_PMD_NR >= DEVICE_PRIVATE_PFN_OFFSET || this.index >= 256)
      throw new Errno(
        'EINVAL',
        `frames must be below 2^31 - ${HPAGE_PMD_NR} and a world has at most 256 machines`,
      );
    this.phys = new PhysMem({ frames, pfnBase: this.index * PFN_SPAN });
    this.nextDevicePfn = DEVICE_PFN_BASE + this.index * 2 ** 36;
    this.swap = new SwapSpace(options.swapSlots ?? 1 << 20);
    this.reclaimOnPressure = options.reclaimOnPressure ?? true;
    this.notifierDispatch = options.notifierDispatch ?? 'tree';
    this.legacyNotifierCore = options.legacyNotifierCore ?? false;
    this.earlyCowPinned = options.earlyCowPinned ?? true;
    this.unwindItreeOnRefusal = options.unwindItreeOnRefusal ?? false;
    this.cpuTlbs = options.cpuTlbs ?? true;
  }

  /** mm_alloc(): a new, empty address space with mm_users = mm_count = 1. */
  createMm(): Mm {
    const mm = new Mm(this, ++counters(this.kernel).mms);
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

  /**
   * pfns for `count` device-private pages (memremap_pages()): inside this machine's span, above
   * any frame the allocator can hand out, so the oracles track their generations.
   */
  allocDevicePrivatePfns(count: number): number {
    const first = this.phys.pfnBase + DEVICE_PRIVATE_PFN_OFFSET + this.nextDevicePrivate;
    this.nextDevicePrivate += count;
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

  /** A fresh VMA number. */
  allocVmaId(): number {
    return this.nextVmaId++;
  }

  /**
   * The device frames [first, first + count) can no longer be reached through mappings of
   * `file` (a driver revoked them), or, with `file` null, through any mapping: their device was
   * unplugged, and a CPU access to them is a machine check. The oracles check that no
   * page-table entry (of a VMA of `file`) maps them then.
   */
  revokeDevicePfns(first: number, count: number, file: File | null): void {
    if (this.kernel.trace.on)
      this.kernel.trace.emit('pfn-revoke', { first, count, file: file?.name ?? null });
  }

  /** alloc_pid(): a fresh process id. */
  allocPid(): number {
    return this.nextPid++;
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
    if (page !== null) charge('page.alloc');
    return page;
  }
}
