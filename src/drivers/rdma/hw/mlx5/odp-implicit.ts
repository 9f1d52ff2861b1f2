/**
 * Implicit ODP in the mlx5-like driver (drivers/infiniband/hw/mlx5/odp.c, current design): an MR
 * over the whole address space (ibv_reg_mr(0, SIZE_MAX, ON_DEMAND)) whose parent mkey is a KSM
 * of 1 GiB entries, each the null mkey or a child MR created on first fault:
 * mlx5_ib_alloc_implicit_mr, implicit_get_child_mr, pagefault_implicit_mr,
 * destroy_unused_implicit_child_mr with free_implicit_child_mr_work, and the teardown of the
 * children at deregistration (mlx5_ib_free_odp_mr). The tables stay sparse: a child exists only
 * for a gigabyte that was touched.
 */
import { kernel } from '../../../../kernel/kernel.ts';
import type { Co } from '../../../../kernel/task.ts';
import { Work } from '../../../../kernel/workqueue.ts';
import { Errno } from '../../../../lib/errors.ts';
import { TASK_SIZE } from '../../../../mm/constants.ts';
import type { Process } from '../../../../mm/process.ts';
import { ibAccessWritable } from '../../core/ib-verbs.ts';
import type { IbPd } from '../../core/objects.ts';
import {
  ibUmemOdpAllocChild,
  ibUmemOdpAllocImplicit,
  ibUmemOdpRelease,
  type UmemOdp,
} from '../../core/umem-odp.ts';
import type { Mlx5Device } from './main.ts';
import { Mlx5Mr, mlx5DeregMr } from './mr.ts';
import {
  mlx5MnOps,
  mlx5rDerefOdpMkey,
  mlx5rStoreOdpMkey,
  type PfFlags,
  pagefaultRealMr,
} from './odp-current.ts';

/** MLX5_IMR_MTT_SHIFT: each KSM entry of the parent covers 1 GiB. */
export const MLX5_IMR_MTT_SHIFT = 30;
export const MLX5_IMR_MTT_SIZE = 2 ** MLX5_IMR_MTT_SHIFT;
/** mlx5_imr_ksm_entries: the parent spans TASK_SIZE. */
export const MLX5_IMR_KSM_ENTRIES = TASK_SIZE / MLX5_IMR_MTT_SIZE;

/** The implicit state of a parent MR. */
export interface ImplicitMr {
  /** implicit_children: the child MRs by 1 GiB index (each holding one usecount). */
  readonly children: Map<number, Mlx5Mr>;
  /** The KSM as the hardware resolves it: index → child; a missing index is the null mkey. */
  readonly ksm: Map<number, Mlx5Mr>;
}

/**
 * mlx5_ib_alloc_implicit_mr(): the anchor umem and the parent mkey, every KSM entry the null
 * mkey, visible to the fault handler and enabled.
 */
export function mlx5IbAllocImplicitMr(
  dev: Mlx5Device,
  pd: IbPd,
  access: number,
  caller: Process,
  length: number,
): Mlx5Mr {
  const umem = ibUmemOdpAllocImplicit(pd.ucontext, caller, ibAccessWritable(access));
  const { index, key } = dev.allocMkey();
  const imr = new Mlx5Mr(dev, index, key, pd, access, 0, length, umem, umem.owningMm);
  imr.implicit = { children: new Map(), ksm: new Map() };
  umem.privateMr = imr;
  mlx5rStoreOdpMkey(dev, imr);
  dev.mkeys.set(index, imr);
  return imr;
}

/**
 * implicit_get_child_mr(): a child MR over the gigabyte `idx` (its umem from
 * ib_umem_odp_alloc_child, EFAULT if the mm is exiting), its MTT zapped and enabled, then put in
 * implicit_children with a compare-and-exchange: the loser of a race uses the winner's child
 * (and destroys its own). Returns the child with a usecount for the caller.
 */
function* implicitGetChildMr(imr: Mlx5Mr, idx: number): Co<Mlx5Mr> {
  const dev = imr.dev;
  const parent = imr.implicit!;
  const odp = yield* ibUmemOdpAllocChild(
    imr.odp as UmemOdp,
    idx * MLX5_IMR_MTT_SIZE,
    MLX5_IMR_MTT_SIZE,
    mlx5MnOps(dev),
  );
  const { index, key } = dev.allocMkey();
  const mr = new Mlx5Mr(
    dev,
    index,
    key,
    imr.pd,
    imr.access,
    odp.start,
    MLX5_IMR_MTT_SIZE,
    odp,
    imr.mm,
  );
  mr.parent = imr;
  odp.privateMr = mr;
  mlx5rStoreOdpMkey(dev, mr);
  dev.mkeys.set(index, mr);
  const winner = parent.children.get(idx);
  if (winner !== undefined) {
    // Another thread beat us to creating the child: use theirs.
    winner.usecount++;
    winner.tracked.get(true);
    yield* mlx5DeregMr(dev, mr);
    return winner;
  }
  // The first reference is the xarray's, the second the caller's.
  mr.usecount = 2;
  mr.tracked.get();
  mr.tracked.get();
  parent.children.set(idx, mr);
  return mr;
}

/**
 * pagefault_implicit_mr(): [va, va + bcnt) must lie in the parent's span (EFAULT). Each child
 * gigabyte it touches is looked up with a usecount (created if absent) and faulted like an
 * explicit MR; then the KSM entries of new children are written under the parent's umem_mutex
 * (a racing fault may see a child not yet in the KSM for a moment: the hardware faults again).
 */
export function* pagefaultImplicitMr(
  imr: Mlx5Mr,
  va: number,
  bcnt: number,
  flags: PfFlags,
): Co<number> {
  if (
    va >= MLX5_IMR_KSM_ENTRIES * MLX5_IMR_MTT_SIZE ||
    MLX5_IMR_KSM_ENTRIES * MLX5_IMR_MTT_SIZE - va < bcnt
  )
    throw new Errno(
      'EFAULT',
      `${imr.tt.name}: [0x${va.toString(16)}, +${bcnt}) is outside the address space`,
    );
  const parent = imr.implicit!;
  const added: number[] = [];
  let npages = 0;
  try {
    while (bcnt > 0) {
      const idx = Math.floor(va / MLX5_IMR_MTT_SIZE);
      let mtt = parent.children.get(idx);
      if (mtt === undefined) {
        mtt = yield* implicitGetChildMr(imr, idx);
        added.push(idx);
      } else {
        mtt.usecount++;
        mtt.tracked.get(true);
      }
      const umem = mtt.odp as UmemOdp;
      const len = Math.min(va + bcnt, umem.end) - va;
      try {
        npages += yield* pagefaultRealMr(mtt, va, len, flags);
      } finally {
        mlx5rDerefOdpMkey(mtt);
      }
      va += len;
      bcnt -= len;
    }
    return npages;
  } finally {
    if (added.length > 0) yield* updateKsm(imr, added);
  }
}

/** The parent's KSM entries of `idxs` rewritten from implicit_children (a UMR, parent's mutex). */
function* updateKsm(imr: Mlx5Mr, idxs: readonly number[]): Co {
  const parent = imr.implicit!;
  const umem = imr.odp as UmemOdp;
  yield* umem.umemMutex.lock();
  imr.tt.beginUpdate();
  for (const idx of idxs) {
    const child = parent.children.get(idx);
    if (child === undefined) parent.ksm.delete(idx);
    else parent.ksm.set(idx, child);
  }
  imr.tt.endUpdate();
  umem.umemMutex.unlock();
}

/**
 * destroy_unused_implicit_child_mr() (from the invalidate op, the child's umem_mutex held): a
 * child an invalidation emptied is taken out of implicit_children (unless the parent is dying
 * or another thread already did), and a work item frees it once no fault uses it.
 */
export function destroyUnusedImplicitChildMr(mr: Mlx5Mr): void {
  const imr = mr.parent!;
  // refcount_inc_not_zero() of the parent's usecount: a parent whose lookups stopped is dying.
  if (!imr.dev.odpMkeys.has(imr.index)) return;
  const idx = Math.floor(mr.iova / MLX5_IMR_MTT_SIZE);
  const parent = imr.implicit!;
  if (parent.children.get(idx) !== mr) return;
  imr.usecount++;
  imr.tracked.get(true);
  parent.children.delete(idx);
  imr.dev.prefetchWq.queueWork(
    new Work(`${mr.tt.name}/free`, () => freeImplicitChildMrWork(mr, idx)),
  );
}

/**
 * free_implicit_child_mr_work(): the xarray's reference dropped and the faults using the child
 * waited for, the KSM entry nulled, the child deregistered, the parent's reference dropped.
 */
function* freeImplicitChildMrWork(mr: Mlx5Mr, idx: number): Co {
  const imr = mr.parent!;
  // Mutant: the child is freed without waiting for the faults that still use it.
  if (!kernel().mutant('odp.implicit-child-reclaim-race')) {
    mlx5rDerefOdpMkey(mr);
    yield* mr.usecountWait.waitEvent(() => mr.usecount === 0);
  } else {
    mr.tracked.put();
    mr.usecount = 0;
  }
  yield* updateKsm(imr, [idx]);
  yield* mlx5DeregMr(imr.dev, mr);
  mlx5rDerefOdpMkey(imr);
}

/**
 * The implicit half of deregistration, once lookups of the parent stopped: every child taken out
 * and deregistered, then the anchor umem released.
 */
export function* mlx5IbFreeImplicitMr(imr: Mlx5Mr): Co {
  const parent = imr.implicit!;
  for (const [idx, child] of [...parent.children]) {
    parent.children.delete(idx);
    parent.ksm.delete(idx);
    mlx5rDerefOdpMkey(child);
    yield* mlx5DeregMr(imr.dev, child);
  }
  parent.ksm.clear();
  yield* ibUmemOdpRelease(imr.odp as UmemOdp);
}
