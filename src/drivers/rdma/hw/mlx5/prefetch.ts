/**
 * Prefetch of ODP MRs in the mlx5-like driver (drivers/infiniband/hw/mlx5/odp.c, current
 * design): mlx5_ib_advise_mr, mlx5_ib_advise_mr_prefetch, get_prefetchable_mr, the synchronous
 * mlx5_ib_prefetch_sg_list, and the asynchronous init_prefetch_work and mlx5_ib_prefetch_mr_work
 * (a work item on the unbound workqueue, holding a usecount reference on each MR it prefetches,
 * which deregistration waits for).
 */

import { kernel } from '../../../../kernel/kernel.ts';
import type { Co } from '../../../../kernel/task.ts';
import { Work } from '../../../../kernel/workqueue.ts';
import { Errno, isErrno } from '../../../../lib/errors.ts';
import {
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
  IB_UVERBS_ADVISE_MR_FLAG_FLUSH,
  prefetchAdvice,
} from '../../core/ib-verbs.ts';
import type { IbPd, IbSge } from '../../core/objects.ts';
import type { UmemOdp } from '../../core/umem-odp.ts';
import type { Mlx5Device } from './main.ts';
import type { Mlx5Mr } from './mr.ts';
import { mlx5rDerefOdpMkey, type PfFlags, pagefaultMr } from './odp-current.ts';

/**
 * mlx5_ib_advise_mr(): PREFETCH (read only: never grants write), PREFETCH_WRITE, or
 * PREFETCH_NO_FAULT (only pages the CPU already maps); EOPNOTSUPP for another advice. With
 * FLUSH it runs now and the first error is returned; without, a work item does it later, best
 * effort (ENOENT now if a key is not a prefetchable MR).
 */
export function* mlx5IbAdviseMr(
  dev: Mlx5Device,
  pd: IbPd,
  advice: number,
  flags: number,
  sgList: readonly IbSge[],
): Co {
  const asked = prefetchAdvice(advice);
  dev.stats.prefetch++;
  const pf: PfFlags = { downgrade: asked.readOnly, snapshot: asked.snapshot };
  if (flags & IB_UVERBS_ADVISE_MR_FLAG_FLUSH)
    return yield* mlx5IbPrefetchSgList(dev, pd, advice, pf, sgList);
  const mrs = initPrefetchWork(dev, pd, advice, sgList);
  dev.prefetchWq.queueWork(
    new Work(`${dev.name}/prefetch`, () => mlx5IbPrefetchMrWork(dev, mrs, pf, sgList)),
  );
}

/**
 * get_prefetchable_mr(): the ODP MR behind `lkey` with a usecount reference, under odp_mkeys'
 * lock; null when the key names none, or an MR of another PD, or a read-only MR for a write
 * prefetch.
 */
function getPrefetchableMr(dev: Mlx5Device, pd: IbPd, advice: number, lkey: number): Mlx5Mr | null {
  const mr = dev.odpMkeys.get(lkey >>> 8);
  if (mr === undefined || mr.lkey !== lkey || mr.pd !== pd) return null;
  if (advice === IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE && !(mr.odp as UmemOdp).writable)
    return null;
  mr.usecount++;
  mr.tracked.get(true);
  return mr;
}

function noMr(lkey: number): Errno {
  return new Errno('ENOENT', `advise_mr: lkey 0x${lkey.toString(16)} is not a prefetchable ODP MR`);
}

/** mlx5_ib_prefetch_sg_list(): each element in turn, its MR held meanwhile; the first error ends it. */
function* mlx5IbPrefetchSgList(
  dev: Mlx5Device,
  pd: IbPd,
  advice: number,
  pf: PfFlags,
  sgList: readonly IbSge[],
): Co {
  for (const sge of sgList) {
    const mr = getPrefetchableMr(dev, pd, advice, sge.lkey);
    if (mr === null) throw noMr(sge.lkey);
    try {
      dev.stats.page_prefetch += yield* pagefaultMr(mr, sge.addr, sge.length, pf);
    } finally {
      mlx5rDerefOdpMkey(mr);
    }
  }
}

/** init_prefetch_work(): a reference on every element's MR, or ENOENT (the ones taken dropped). */
function initPrefetchWork(
  dev: Mlx5Device,
  pd: IbPd,
  advice: number,
  sgList: readonly IbSge[],
): Mlx5Mr[] {
  const mrs: Mlx5Mr[] = [];
  for (const sge of sgList) {
    const mr = getPrefetchableMr(dev, pd, advice, sge.lkey);
    if (mr === null) {
      for (const held of mrs) mlx5rDerefOdpMkey(held);
      throw noMr(sge.lkey);
    }
    mrs.push(mr);
  }
  // Mutant: the work keeps no reference, so a deregistration does not wait for it and frees
  // the MR the work is about to fault through (the reason the work holds a usecount each).
  if (kernel().mutant('odp.prefetch-without-ref')) for (const held of mrs) mlx5rDerefOdpMkey(held);
  return mrs;
}

/** mlx5_ib_prefetch_mr_work(): best effort, errors ignored; each MR's reference dropped after. */
function* mlx5IbPrefetchMrWork(
  dev: Mlx5Device,
  mrs: readonly Mlx5Mr[],
  pf: PfFlags,
  sgList: readonly IbSge[],
): Co {
  for (let i = 0; i < mrs.length; i++) {
    const sge = sgList[i]!;
    try {
      dev.stats.page_prefetch += yield* pagefaultMr(mrs[i]!, sge.addr, sge.length, pf);
    } catch (e) {
      if (!isErrno(e)) throw e;
    } finally {
      if (!kernel().mutant('odp.prefetch-without-ref')) mlx5rDerefOdpMkey(mrs[i]!);
    }
  }
}
