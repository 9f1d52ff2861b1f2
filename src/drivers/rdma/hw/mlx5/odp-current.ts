/**
 * On-demand paging in the mlx5-like driver as Linux has it since 5.10
 * (drivers/infiniband/hw/mlx5/odp.c): the interval notifier's invalidate op
 * (mlx5_ib_invalidate_range), pagefault_real_mr and pagefault_mr, the odp_mkeys lookup with a
 * per-mkey usecount (mlx5r_store_odp_mkey, mlx5r_deref_odp_mkey, mlx5r_deref_wait_odp_mkey),
 * the fault handler's pagefault_single_data_segment, and mlx5_ib_init_odp_mr.
 */
import { charge } from '../../../../cost/charge.ts';
import { preempt } from '../../../../kernel/context.ts';
import { kernel } from '../../../../kernel/kernel.ts';
import type { Co } from '../../../../kernel/task.ts';
import { Errno } from '../../../../lib/errors.ts';
import { PAGE_SIZE } from '../../../../mm/constants.ts';
import { mmuIntervalSetSeq } from '../../../../mm/mmu-interval-notifier.ts';
import type { MmuIntervalNotifierOps } from '../../../../mm/mmu-interval-notifier-types.ts';
import {
  ibUmemOdpMapDmaAndLock,
  ibUmemOdpUnmapDmaPages,
  type UmemOdp,
} from '../../core/umem-odp.ts';
import { odpFaultEvent } from '../../events.ts';
import type { Mlx5Device } from './main.ts';
import type { Mlx5Mr } from './mr.ts';
import { destroyUnusedImplicitChildMr, pagefaultImplicitMr } from './odp-implicit.ts';
import { mlx5UpdateMtt, mlx5ZapMapped } from './umr.ts';

/** MLX5_PF_FLAGS_*: how a fault maps. */
export interface PfFlags {
  /** DOWNGRADE: never grant write (a read-only prefetch). */
  readonly downgrade?: boolean;
  /** SNAPSHOT: take only what the CPU page table already maps, do not fault. */
  readonly snapshot?: boolean;
}

/** mlx5_mn_ops: the interval notifier ops of every ODP umem of the device. */
export function mlx5MnOps(dev: Mlx5Device): MmuIntervalNotifierOps {
  return {
    client: 'mlx5',
    invalidate: (mni, range, curSeq) =>
      mlx5IbInvalidateRange(dev, mni.data as UmemOdp, range, curSeq),
  };
}

/**
 * mlx5_ib_invalidate_range(): under umem_mutex, the sequence is set (faults that sampled the old
 * one retry), the MTT entries of the range that hold a translation are zapped, and the pages
 * unmapped. False for a non-blockable range (the mutex may sleep). Nothing to do before the
 * first page was mapped (`private` may not be set yet) or after the MR was revoked.
 */
export function* mlx5IbInvalidateRange(
  dev: Mlx5Device,
  umem: UmemOdp,
  range: { readonly start: number; readonly end: number; readonly blockable: boolean },
  curSeq: number,
): Co<boolean> {
  if (!range.blockable) return false;
  const notifier = umem.notifier!;
  // Mutant: the sequence is set only after umem_mutex is dropped, so a fault that takes the
  // mutex in between passes its read_retry and maps pages the CPU is about to lose.
  const late = kernel().mutant('odp.set-seq-outside-lock');
  yield* umem.umemMutex.lock();
  try {
    if (!late) mmuIntervalSetSeq(notifier, curSeq);
    const mr = umem.privateMr as Mlx5Mr | null;
    const lo = Math.max(umem.start, range.start);
    const hi = Math.min(umem.end, range.end);
    if (umem.npages === 0) return true;
    if (mr === null) {
      // Revoked by a deregistration: the device no longer reaches the pages, but Linux also
      // skips unmapping them, so ib_umem_odp_release() later dirties pages the CPU freed
      // (docs/findings/odp-revoked-mr-stale-dma.md). The fix unmaps them here.
      if (dev.fixRevokedInvalidate && lo < hi) ibUmemOdpUnmapDmaPages(umem, lo, hi);
      return true;
    }
    if (lo < hi) {
      const zapped = yield* mlx5ZapMapped(mr, lo, hi);
      dev.stats.page_invalidations += zapped;
      if (zapped > 0) charge('mlx5.invalidate', zapped);
      ibUmemOdpUnmapDmaPages(umem, lo, hi);
    }
    if (umem.npages === 0 && mr.parent !== null) destroyUnusedImplicitChildMr(mr);
    return true;
  } finally {
    umem.umemMutex.unlock();
    if (late) {
      yield* preempt();
      mmuIntervalSetSeq(notifier, curSeq);
    }
  }
}

/**
 * pagefault_real_mr(): maps [va, va + bcnt) of an explicit ODP MR (faulting pages in, for write
 * when the MR is writable and the fault is not a downgrade, or a snapshot) and writes those MTT
 * entries, all under umem_mutex. Returns the device pages mapped.
 */
export function* pagefaultRealMr(
  mr: Mlx5Mr,
  va: number,
  bcnt: number,
  flags: PfFlags = {},
): Co<number> {
  const umem = mr.odp as UmemOdp;
  const write = umem.writable && !flags.downgrade;
  if (!flags.snapshot) odpFaultEvent(mr.tt.name, mr.mm.id, va, bcnt, write, umem.writable);
  const before = umem.contentions;
  let np: number;
  try {
    np = yield* ibUmemOdpMapDmaAndLock(umem, va, bcnt, { read: true, write }, !flags.snapshot);
  } finally {
    mr.dev.stats.fault_contentions += umem.contentions - before;
  }
  try {
    const startIdx = Math.floor((va - umem.start) / PAGE_SIZE);
    yield* mlx5UpdateMtt(mr, startIdx, np, false);
  } finally {
    umem.umemMutex.unlock();
  }
  return np;
}

/**
 * pagefault_mr(): [ioVirt, ioVirt + bcnt) of the MR (its iova is its address), EFAULT when the
 * range leaves the MR; then pagefault_real_mr(), or pagefault_implicit_mr() for an implicit MR.
 */
export function* pagefaultMr(
  mr: Mlx5Mr,
  ioVirt: number,
  bcnt: number,
  flags: PfFlags = {},
): Co<number> {
  if (mr.implicit !== null) return yield* pagefaultImplicitMr(mr, ioVirt, bcnt, flags);
  const umem = mr.odp as UmemOdp;
  if (ioVirt < umem.start || ioVirt >= umem.end || umem.end - ioVirt < bcnt)
    throw new Errno(
      'EFAULT',
      `${mr.tt.name}: [0x${ioVirt.toString(16)}, +${bcnt}) is outside the MR`,
    );
  return yield* pagefaultRealMr(mr, ioVirt, bcnt, flags);
}

/** mlx5r_store_odp_mkey(): the MR becomes visible to the fault handler's lookups. */
export function mlx5rStoreOdpMkey(dev: Mlx5Device, mr: Mlx5Mr): void {
  dev.odpMkeys.set(mr.index, mr);
}

/** The odp_mkeys entry for `key` with a usecount reference (xa_load + refcount_inc under xa_lock). */
export function mlx5rGetOdpMkey(dev: Mlx5Device, key: number): Mlx5Mr | null {
  const mr = dev.odpMkeys.get(key >>> 8);
  if (mr === undefined) return null;
  mr.usecount++;
  mr.tracked.get(true);
  return mr;
}

/** mlx5r_deref_odp_mkey(): drops a usecount reference; the last one wakes the deregistration. */
export function mlx5rDerefOdpMkey(mr: Mlx5Mr): void {
  mr.usecount--;
  mr.tracked.put();
  if (mr.usecount === 0) mr.usecountWait.wakeUpAll();
}

/**
 * mlx5r_deref_wait_odp_mkey() after the xa_erase: no new lookup finds the MR, and this waits
 * until the ones in flight (faults, prefetches) dropped their references.
 */
export function* mlx5rEraseAndWaitOdpMkey(dev: Mlx5Device, mr: Mlx5Mr): Co {
  dev.odpMkeys.delete(mr.index);
  mr.tracked.revoke();
  yield* mr.usecountWait.waitEvent(() => mr.usecount === 0);
}

/**
 * pagefault_single_data_segment() since 5.10: the mkey through odp_mkeys with a usecount
 * reference. A key that is not an ODP mkey counts as mapped (the SGE list may mix MRs); a
 * stale key is EFAULT. Returns the device pages mapped and the bytes now reachable.
 */
export function* pagefaultSingleDataSegmentCurrent(
  dev: Mlx5Device,
  pd: unknown,
  key: number,
  ioVirt: number,
  bcnt: number,
  bytesCommitted: number,
  downgrade: boolean,
): Co<{ npages: number; bytesMapped: number }> {
  const mr = mlx5rGetOdpMkey(dev, key);
  if (mr === null) return { npages: 0, bytesMapped: bcnt - bytesCommitted };
  try {
    if (mr.lkey !== key || mr.pd !== pd) {
      dev.stats.num_mrs_not_found++;
      throw new Errno('EFAULT', `${dev.name}: failed to find mkey 0x${key.toString(16)}`);
    }
    const virt = ioVirt + bytesCommitted;
    const len = bcnt - bytesCommitted;
    const npages = yield* pagefaultMr(mr, virt, len, { downgrade });
    dev.stats.page_faults += npages;
    const mapped = npages * PAGE_SIZE - (virt % PAGE_SIZE);
    return { npages, bytesMapped: Math.min(mapped, len) };
  } finally {
    mlx5rDerefOdpMkey(mr);
  }
}

/**
 * mlx5_ib_init_odp_mr(): at registration, what the CPU page table already maps becomes device
 * visible (a snapshot over the whole MR), and the mkey is enabled.
 */
export function* mlx5IbInitOdpMr(mr: Mlx5Mr): Co {
  const umem = mr.odp as UmemOdp;
  yield* pagefaultRealMr(mr, umem.start, umem.end - umem.start, { snapshot: true });
}
