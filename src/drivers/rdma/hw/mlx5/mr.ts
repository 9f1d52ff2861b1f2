/**
 * Memory regions of the mlx5-like driver (drivers/infiniband/hw/mlx5/mr.c):
 * mlx5_ib_reg_user_mr (create_user_odp_mr for the current ODP design), mlx5_ib_dereg_mr, and
 * the 2014 design's mkey lookup of the page-fault path (mlx5_ib_odp_find_mr_lkey). An mkey is 24
 * bits of index and 8 bits of variant, so a key reused after deregistration does not match the
 * old one.
 */

import { preempt } from '../../../../kernel/context.ts';
import { WaitQueue } from '../../../../kernel/sync/wait-queue.ts';
import type { Co } from '../../../../kernel/task.ts';
import { Errno } from '../../../../lib/errors.ts';
import type { Mm } from '../../../../mm/mm.ts';
import type { Process } from '../../../../mm/process.ts';
import { DeviceMr } from '../../core/device-mr.ts';
import {
  IB_ACCESS_ON_DEMAND,
  IB_ODP_SUPPORT_IMPLICIT,
  ibAccessWritable,
  SIZE_MAX,
} from '../../core/ib-verbs.ts';
import type { IbPd } from '../../core/objects.ts';
import { type IbUmem, ibUmemGet, ibUmemRelease } from '../../core/umem.ts';
import { ibUmemOdpGet, ibUmemOdpRelease, type UmemOdp } from '../../core/umem-odp.ts';
import {
  ibUmemOdpGet2014,
  ibUmemOdpRelease2014,
  type UmemOdp2014,
} from '../../core/umem-odp-2014.ts';
import type { Mlx5Device } from './main.ts';
import { mlx5InvalidateRange } from './odp.ts';
import {
  mlx5IbInitOdpMr,
  mlx5MnOps,
  mlx5rEraseAndWaitOdpMkey,
  mlx5rStoreOdpMkey,
} from './odp-current.ts';
import { type ImplicitMr, mlx5IbAllocImplicitMr, mlx5IbFreeImplicitMr } from './odp-implicit.ts';

/** struct mlx5_ib_mr. */
export class Mlx5Mr extends DeviceMr {
  readonly dev: Mlx5Device;
  /** The mkey's index in the device's mkey table (mlx5_base_mkey()). */
  readonly index: number;
  /** mr->live (2014 design): set once the MR is set up; cleared first thing at deregistration. */
  live = false;
  /** mmkey.usecount (current design): lookups of the fault and prefetch paths in flight. */
  usecount = 0;
  /** mmkey.wait: deregistration waits here for usecount 0. */
  readonly usecountWait: WaitQueue;
  /** The mkey was destroyed: the device no longer resolves it. */
  destroyed = false;
  /** An implicit ODP parent's children and KSM (null for any other MR). */
  implicit: ImplicitMr | null = null;
  /** An implicit child's parent. */
  parent: Mlx5Mr | null = null;

  constructor(
    dev: Mlx5Device,
    index: number,
    key: number,
    pd: IbPd,
    access: number,
    iova: number,
    length: number,
    umem: IbUmem | UmemOdp2014 | UmemOdp,
    mm: Mm,
  ) {
    const name = `${dev.name}/mr${key.toString(16)}`;
    super(name, key, pd, access, iova, length, umem, mm);
    this.dev = dev;
    this.index = index;
    this.usecountWait = new WaitQueue(`${name}.wait`);
  }

  get odp(): UmemOdp2014 | UmemOdp {
    if (this.umem.kind === 'pinned') throw new Error(`${this.tt.name} is not an ODP MR`);
    return this.umem as UmemOdp2014 | UmemOdp;
  }
}

/**
 * mlx5_ib_reg_user_mr(): the umem (ODP or pinned), then the mkey, with every ODP translation
 * absent. In the 2014 design the mkey is made visible and live, then `private` is published,
 * so invalidations see the MR before any fault can complete through it. The current design is
 * create_user_odp_mr().
 */
export function* mlx5RegUserMr(
  dev: Mlx5Device,
  pd: IbPd,
  start: number,
  length: number,
  access: number,
  caller: Process,
): Co<Mlx5Mr> {
  const writable = ibAccessWritable(access);
  const ctx = pd.ucontext;
  const odp = (access & IB_ACCESS_ON_DEMAND) !== 0;
  const mm = caller.mm;
  if (mm === null) throw new Errno('EINVAL', `registration by ${caller}, which has no mm`);
  // Implicit ODP (address 0, length SIZE_MAX) needs the device to advertise it.
  if (odp && start === 0 && length === SIZE_MAX) {
    if (!(dev.odpCaps.generalCaps & IB_ODP_SUPPORT_IMPLICIT) || dev.odpDesign !== 2020)
      throw new Errno('EINVAL', `${dev.name} does not support implicit ODP`);
    return mlx5IbAllocImplicitMr(dev, pd, access, caller, length);
  }
  if (odp && dev.odpDesign === 2020)
    return yield* createUserOdpMr(dev, pd, start, length, access, caller);
  const umem = odp
    ? yield* ibUmemOdpGet2014(ctx, caller, start, length, writable)
    : yield* ibUmemGet(caller, start, length, writable);
  const { index, key } = dev.allocMkey();
  const mr = new Mlx5Mr(dev, index, key, pd, access, start, length, umem, mm);
  dev.mkeys.set(index, mr);
  mr.live = true;
  if (odp) {
    // smp_wmb(): the MR is fully set up before `private` points at it.
    yield* preempt();
    (umem as UmemOdp2014).privateMr = mr;
  }
  return mr;
}

/**
 * create_user_odp_mr() (current design): the umem subscribes to its range, the MR gets an mkey,
 * `private` points at it, the fault handler can find it (odp_mkeys), and what the CPU already
 * maps is made device visible before the mkey is enabled (the hardware resolves it from then).
 */
function* createUserOdpMr(
  dev: Mlx5Device,
  pd: IbPd,
  start: number,
  length: number,
  access: number,
  caller: Process,
): Co<Mlx5Mr> {
  const umem = yield* ibUmemOdpGet(
    pd.ucontext,
    caller,
    start,
    length,
    ibAccessWritable(access),
    mlx5MnOps(dev),
  );
  const { index, key } = dev.allocMkey();
  const mr = new Mlx5Mr(dev, index, key, pd, access, start, length, umem, umem.owningMm);
  umem.privateMr = mr;
  mlx5rStoreOdpMkey(dev, mr);
  yield* mlx5IbInitOdpMr(mr);
  dev.mkeys.set(index, mr);
  return mr;
}

/**
 * mlx5_ib_dereg_mr(). ODP, 2014: no new fault may succeed (live = 0), running faults finish
 * (synchronize_srcu), every translation is zapped, and the umem leaves the tree before the
 * mkey is destroyed, so no invalidation in flight looks at a freed MR. ODP, current design
 * (e6fb246ccafb): lookups stop and the ones in flight finish (odp_mkeys, usecount), the mkey is
 * revoked at the hardware under umem_mutex (clearing `private`), then the umem is released (its
 * subscription removed, every page unmapped). Pinned: the mkey is destroyed, then the pages
 * are unpinned.
 */
export function* mlx5DeregMr(dev: Mlx5Device, mr: Mlx5Mr): Co {
  const umem = mr.umem;
  if (umem.kind === 'odp-2014') {
    mr.live = false;
    yield* dev.mrSrcu.synchronize();
    yield* mlx5InvalidateRange(dev, umem, umem.start, umem.end);
    yield* ibUmemOdpRelease2014(umem);
    destroyMkey(dev, mr);
    return;
  }
  if (umem.kind === 'odp') {
    yield* mlx5rEraseAndWaitOdpMkey(dev, mr);
    yield* umem.umemMutex.lock();
    dev.mkeys.delete(mr.index);
    umem.privateMr = null;
    mr.tt.unmapAll(mr.mm);
    umem.umemMutex.unlock();
    if (mr.implicit !== null) yield* mlx5IbFreeImplicitMr(mr);
    else yield* ibUmemOdpRelease(umem);
    destroyMkey(dev, mr);
    return;
  }
  destroyMkey(dev, mr);
  ibUmemRelease(umem);
}

/** mlx5_core_destroy_mkey(): the device stops resolving the key; the MR is freed. */
function destroyMkey(dev: Mlx5Device, mr: Mlx5Mr): void {
  dev.mkeys.delete(mr.index);
  mr.destroyed = true;
  mr.tt.retire();
  mr.tracked.free();
}

/** The mkey table entry for `key` if its variant matches (what the hardware resolves). */
export function mlx5MkeyLookup(dev: Mlx5Device, key: number): Mlx5Mr | null {
  const mr = dev.mkeys.get(key >>> 8);
  return mr !== undefined && mr.lkey === key ? mr : null;
}

/**
 * mlx5_ib_odp_find_mr_lkey(): the live MR behind `key`, for the page-fault path (called in
 * an mr_srcu read section); null when it was never there, replaced, or is being destroyed.
 */
export function mlx5OdpFindMrLkey(dev: Mlx5Device, key: number): Mlx5Mr | null {
  const mr = mlx5MkeyLookup(dev, key);
  return mr?.live ? mr : null;
}
