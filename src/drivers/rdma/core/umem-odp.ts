/**
 * On-demand paging umems as Linux has them since 5.10 (drivers/infiniband/core/umem_odp.c):
 * one mmu_interval_notifier per umem, hmm_range_fault to fault pages in, and umem_mutex as the
 * driver lock of the interval-notifier protocol: ib_umem_odp_get, ib_umem_odp_alloc_implicit,
 * ib_umem_odp_alloc_child, ib_umem_odp_release, ib_umem_odp_map_dma_and_lock (with
 * ib_umem_odp_map_dma_single_page) and ib_umem_odp_unmap_dma_pages.
 */
import { spend } from '../../../cost/charge.ts';
import { bug, kernel } from '../../../kernel/kernel.ts';
import { Mutex } from '../../../kernel/sync/mutex.ts';
import type { Co } from '../../../kernel/task.ts';
import { BlockMap } from '../../../lib/block-map.ts';
import { Errno, isErrno } from '../../../lib/errors.ts';
import { hex, PAGE_SIZE } from '../../../mm/constants.ts';
import { mmput, mmputAsync } from '../../../mm/exit.ts';
import {
  HMM_PFN_ERROR,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  HMM_RANGE_DEFAULT_TIMEOUT_NS,
  hmmPfnFlags,
  hmmPfnToPfn,
  hmmRange,
  hmmRangeFault,
} from '../../../mm/hmm.ts';
import type { Mm } from '../../../mm/mm.ts';
import { mmdrop, mmgetNotZero, mmgrab } from '../../../mm/mm-refs.ts';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
} from '../../../mm/mmu-interval-notifier.ts';
import {
  MmuIntervalNotifier,
  type MmuIntervalNotifierOps,
} from '../../../mm/mmu-interval-notifier-types.ts';
import type { Process } from '../../../mm/process.ts';
import type { IbUcontext } from './objects.ts';
import type { OdpAccess, OdpSlot } from './umem-odp-2014.ts';

/** struct ib_umem with its ib_umem_odp, current design. */
export class UmemOdp {
  readonly kind = 'odp';
  readonly context: IbUcontext;
  /** umem->owning_mm (mmgrab'ed) and the registering process (tgid). */
  readonly owningMm: Mm;
  readonly tgid: Process;
  /** umem->address and length as registered; start/end are ib_umem_start/end. */
  readonly address: number;
  readonly length: number;
  readonly start: number;
  readonly end: number;
  readonly writable: boolean;
  /** An implicit umem is only an anchor: no range, no lists, no notifier. */
  readonly isImplicitOdp: boolean;
  /** The interval subscription over [start, end); null for an implicit umem. */
  readonly notifier: MmuIntervalNotifier | null;
  /**
   * dma_list: the pages mapped for the device, with their READ/WRITE bits, by page index
   * (stored sparse). pfn_list is not kept: it is hmm_range_fault's output, the range's pfns.
   */
  readonly slots = new BlockMap<OdpSlot>();
  /** umem_mutex: the driver lock of the interval-notifier protocol. */
  readonly umemMutex: Mutex;
  /** npages: how many slots are mapped. */
  npages = 0;
  /** Faults that went round again (sequence moved, or hmm_range_fault busy): the model's count. */
  contentions = 0;
  /** private: the driver's MR (cleared when the MR is revoked). */
  privateMr: unknown = null;
  readonly name: string;

  constructor(
    context: IbUcontext,
    owner: Process,
    mm: Mm,
    range: { address: number; length: number; start: number; end: number },
    writable: boolean,
    ops: MmuIntervalNotifierOps | null,
  ) {
    this.context = context;
    this.tgid = owner;
    this.owningMm = mm;
    this.address = range.address;
    this.length = range.length;
    this.start = range.start;
    this.end = range.end;
    this.writable = writable;
    this.isImplicitOdp = ops === null;
    this.name = `${context.device.name}/umem${context.device.objectId()}`;
    this.umemMutex = new Mutex(`${this.name}.umem_mutex`, 'umem_mutex');
    this.notifier = ops === null ? null : new MmuIntervalNotifier(ops, this);
  }

  /** ib_umem_odp_num_pages(): the pages of [start, end). */
  get numPages(): number {
    return (this.end - this.start) / PAGE_SIZE;
  }
}

/**
 * The page-aligned span of [addr, addr + length): EINVAL when empty, EOVERFLOW when it does not
 * fit the model's (2^53-byte) address space.
 */
function alignedRange(addr: number, length: number) {
  if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isSafeInteger(length) || length < 0)
    throw new Errno('EINVAL', `ODP range [${String(addr)}, +${String(length)}) is not valid`);
  const end = addr + length;
  if (end > Number.MAX_SAFE_INTEGER - PAGE_SIZE)
    throw new Errno('EOVERFLOW', `ODP range [${hex(addr)}, +${length}) overflows`);
  const start = addr - (addr % PAGE_SIZE);
  const alignedEnd = Math.ceil(end / PAGE_SIZE) * PAGE_SIZE;
  if (alignedEnd <= start) throw new Errno('EINVAL', 'empty ODP range');
  return { address: addr, length, start, end: alignedEnd };
}

/**
 * ib_umem_odp_get(): an ODP umem over [addr, addr + length) of the caller's mm, subscribed to
 * its invalidations with `ops`. EINVAL for an empty range or a caller without an mm, EOVERFLOW
 * for one that overflows.
 */
export function* ibUmemOdpGet(
  context: IbUcontext,
  caller: Process,
  addr: number,
  length: number,
  writable: boolean,
  ops: MmuIntervalNotifierOps,
): Co<UmemOdp> {
  const range = alignedRange(addr, length);
  const mm = caller.mm;
  if (mm === null) throw new Errno('EINVAL', `ODP registration by ${caller}, which has no mm`);
  return yield* ibInitUmemOdp(new UmemOdp(context, caller, mm, range, writable, ops), ops);
}

/** ib_init_umem_odp(): the umem holds its mm (mmgrab) and subscribes to its range. */
function* ibInitUmemOdp(umem: UmemOdp, ops: MmuIntervalNotifierOps): Co<UmemOdp> {
  const mm = umem.owningMm;
  mmgrab(mm);
  try {
    yield* mmuIntervalNotifierInsert(umem.notifier!, mm, umem.start, umem.end - umem.start, ops);
  } catch (e) {
    mmdrop(mm);
    throw e;
  }
  return umem;
}

/** ib_umem_odp_alloc_implicit(): the anchor of an implicit MR (the whole address space). */
export function ibUmemOdpAllocImplicit(
  context: IbUcontext,
  caller: Process,
  writable: boolean,
): UmemOdp {
  const mm = caller.mm;
  if (mm === null) throw new Errno('EINVAL', `ODP registration by ${caller}, which has no mm`);
  mmgrab(mm);
  const range = { address: 0, length: 0, start: 0, end: 0 };
  return new UmemOdp(context, caller, mm, range, writable, null);
}

/**
 * ib_umem_odp_alloc_child(): an explicit umem over [addr, addr + size) of an implicit root's mm.
 * EINVAL unless the root is implicit; EFAULT when its mm is already exiting.
 */
export function* ibUmemOdpAllocChild(
  root: UmemOdp,
  addr: number,
  size: number,
  ops: MmuIntervalNotifierOps,
): Co<UmemOdp> {
  if (!root.isImplicitOdp) throw new Errno('EINVAL', `${root.name} is not an implicit umem`);
  const mm = root.owningMm;
  if (!mmgetNotZero(mm)) throw new Errno('EFAULT', `${root.name}: mm${mm.id} is exiting`);
  try {
    const range = alignedRange(addr, size);
    const umem = new UmemOdp(root.context, root.tgid, mm, range, root.writable, ops);
    return yield* ibInitUmemOdp(umem, ops);
  } finally {
    yield* mmput(mm);
  }
}

/**
 * ib_umem_odp_release(): the driver guarantees the device no longer uses the umem. An explicit
 * umem is unmapped (under umem_mutex) and unsubscribed; then the mm is dropped.
 */
export function* ibUmemOdpRelease(umem: UmemOdp): Co {
  if (!umem.isImplicitOdp) {
    yield* umem.umemMutex.lock();
    ibUmemOdpUnmapDmaPages(umem, umem.start, umem.end);
    umem.umemMutex.unlock();
    yield* mmuIntervalNotifierRemove(umem.notifier!);
  }
  mmdrop(umem.owningMm);
}

/**
 * ib_umem_odp_map_dma_and_lock(): makes [va, va + bcnt) device-visible. With `fault`, the pages
 * are faulted in (for write when `access.write`); without, only what the CPU page table already
 * maps is taken, with the access it grants (snapshot). Loops read_begin → hmm_range_fault →
 * umem_mutex → read_retry until no invalidation raced, EBUSY after HMM_RANGE_DEFAULT_TIMEOUT.
 * Returns the number of device pages from the first **with umem_mutex held**; the caller
 * programs the device, then unlocks. EINVAL for an empty mask or an owner without an mm,
 * EFAULT outside the umem, hmm_range_fault's errors otherwise (unlocked).
 */
export function* ibUmemOdpMapDmaAndLock(
  umem: UmemOdp,
  va: number,
  bcnt: number,
  access: OdpAccess,
  fault: boolean,
): Co<number> {
  if (!access.read && !access.write) throw new Errno('EINVAL', 'empty ODP access mask');
  if (va < umem.start || va + bcnt > umem.end)
    throw new Errno(
      'EFAULT',
      `[${hex(va)}, +${bcnt}) is outside ${umem.name} [${hex(umem.start)}, ${hex(umem.end)})`,
    );
  const mm = umem.owningMm;
  // get_pid_task(tgid) and mmget_not_zero(): the owner and its mm must still be there.
  if (umem.tgid.exited || !mmgetNotZero(mm))
    throw new Errno('EINVAL', `${umem.name}: the owning process or its mm is gone`);
  try {
    return yield* faultAndLock(umem, mm, va, bcnt, access, fault);
  } finally {
    // On success umem_mutex is held: a last mmput() here would run exit_mmap(), whose release
    // invalidates this umem under the same mutex. Mutant: the synchronous put before
    // 85eaeb5058f0 (v6.0, "IB/core: Fix a nested dead lock as part of ODP flow").
    if (kernel().mutant('odp.map-mmput-sync')) yield* mmput(mm);
    else mmputAsync(mm);
  }
}

function* faultAndLock(
  umem: UmemOdp,
  mm: Mm,
  va: number,
  bcnt: number,
  access: OdpAccess,
  fault: boolean,
): Co<number> {
  const k = kernel();
  const notifier = umem.notifier!;
  const start = va - (va % PAGE_SIZE);
  const end = Math.ceil((va + bcnt) / PAGE_SIZE) * PAGE_SIZE;
  const first = (start - umem.start) / PAGE_SIZE;
  const timeout = k.now + HMM_RANGE_DEFAULT_TIMEOUT_NS;
  for (let pass = 0; ; pass++) {
    if (pass > 0) yield* spend('hmm.retry');
    const seq = yield* mmuIntervalReadBegin(notifier);
    const range = hmmRange(notifier, seq, start, end, { fault, write: fault && access.write });
    yield* mm.mmapLock.downRead();
    try {
      yield* hmmRangeFault(mm, range);
    } catch (e) {
      if (!isErrno(e, 'EBUSY') || k.now > timeout) throw e;
      retryEvent(umem, start, 'EBUSY');
      continue;
    } finally {
      mm.mmapLock.upRead();
    }
    yield* umem.umemMutex.lock();
    // Mutant: the pages are mapped without asking whether an invalidation hit the range since
    // read_begin (the collision check every interval-notifier client must make).
    if (!k.mutant('odp.no-read-retry') && mmuIntervalReadRetry(notifier, seq)) {
      umem.umemMutex.unlock();
      retryEvent(umem, start, 'read_retry');
      continue;
    }
    try {
      for (let i = 0; i < range.pfns.length; i++) {
        mapDmaSinglePage(umem, first + i, range.pfns[i]!, range.gens[i]!, access, fault);
      }
    } catch (e) {
      umem.umemMutex.unlock();
      throw e;
    }
    return range.pfns.length;
  }
}

function retryEvent(umem: UmemOdp, start: number, reason: string): void {
  umem.contentions++;
  const k = kernel();
  if (k.trace.on)
    k.trace.emit('dev-retry', { dev: umem.name, mm: umem.owningMm.id, start, reason });
}

/**
 * ib_umem_odp_map_dma_single_page() and the loop around it (umem_mutex held): a page not
 * present in snapshot mode is skipped; with `fault` every entry must be valid. A slot already
 * mapped gets its access bits rewritten (a non-invalidating read-only → writable change of the
 * same page); otherwise the page is mapped and counted.
 */
function mapDmaSinglePage(
  umem: UmemOdp,
  index: number,
  entry: number,
  gen: number,
  requested: OdpAccess,
  fault: boolean,
): void {
  const flags = hmmPfnFlags(entry);
  if (!(flags & HMM_PFN_VALID) || flags & HMM_PFN_ERROR) {
    if (fault) bug('warn', `${umem.name}: hmm_range_fault faulted in no valid page`);
    return;
  }
  const access = fault ? requested : { read: true, write: (flags & HMM_PFN_WRITE) !== 0 };
  const slot = umem.slots.get(index);
  if (slot !== undefined) {
    slot.read = access.read;
    slot.write = access.write;
    return;
  }
  const page = umem.owningMm.machine.phys.page(hmmPfnToPfn(entry));
  if (page === undefined) throw new Errno('EFAULT', `${umem.name}: pfn of no page`);
  umem.slots.set(index, { page, gen, read: access.read, write: access.write });
  umem.npages++;
}

/**
 * ib_umem_odp_unmap_dma_pages() (umem_mutex held): clears the slots of [virt, bound), marking
 * the pages the device could write dirty.
 */
export function ibUmemOdpUnmapDmaPages(umem: UmemOdp, virt: number, bound: number): void {
  if (umem.umemMutex.owner !== kernel().current)
    bug('warn', `ib_umem_odp_unmap_dma_pages of ${umem.name} without umem_mutex`);
  const lo = Math.max(virt, umem.start);
  const hi = Math.min(bound, umem.end);
  for (let addr = lo - (lo % PAGE_SIZE); addr < hi && umem.slots.size > 0; addr += PAGE_SIZE) {
    const i = (addr - umem.start) / PAGE_SIZE;
    const slot = umem.slots.get(i);
    if (slot === undefined) continue;
    if (slot.write) {
      if (slot.page.kind === 'free' || slot.page.gen !== slot.gen)
        bug(
          'use-after-free',
          `${umem.name}: set_page_dirty on pfn ${slot.page.pfn}, freed before the device mapping was removed`,
        );
      slot.page.dirty = true;
    }
    umem.slots.delete(i);
    umem.npages--;
  }
}
