/**
 * Prefetch of ODP MRs in the software RDMA device (drivers/infiniband/sw/rxe/rxe_odp.c, 6.16
 * and later): rxe_ib_advise_mr, rxe_ib_advise_mr_prefetch, rxe_ib_prefetch_sg_list and the
 * asynchronous rxe_ib_prefetch_mr_work (holding a pool reference on each MR).
 */

import type { Co } from '../../../../kernel/task.ts';
import { Work } from '../../../../kernel/workqueue.ts';
import { Errno, isErrno } from '../../../../lib/errors.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
  IB_UVERBS_ADVISE_MR_FLAG_FLUSH,
  prefetchAdvice,
} from '../../core/ib-verbs.ts';
import type { IbPd, IbSge } from '../../core/objects.ts';
import type { RxeDevice } from './main.ts';
import { lookupMr, type RxeMr, rxeMrPut } from './mr.ts';
import { type RxePfFlags, rxeOdpDoPagefaultAndLock } from './odp.ts';

/**
 * rxe_ib_advise_mr(): PREFETCH (read-only fault), PREFETCH_WRITE, PREFETCH_NO_FAULT (snapshot);
 * EOPNOTSUPP for another advice. FLUSH: now, the first error returned; else a work item, best
 * effort (EINVAL now for a key that names no ODP MR of the PD with local write).
 */
export function* rxeAdviseMr(
  rxe: RxeDevice,
  pd: IbPd,
  advice: number,
  flags: number,
  sgList: readonly IbSge[],
): Co {
  const asked = prefetchAdvice(advice);
  const pf: RxePfFlags = { rdonly: asked.readOnly, snapshot: asked.snapshot };
  if (flags & IB_UVERBS_ADVISE_MR_FLAG_FLUSH)
    return yield* prefetchSgList(rxe, pd, advice, pf, sgList);
  const mrs: RxeMr[] = [];
  for (const sge of sgList) {
    const mr = odpMr(rxe, pd, sge.lkey);
    if (mr === null) {
      for (const held of mrs) rxeMrPut(held);
      throw new Errno(
        'EINVAL',
        `advise_mr: lkey 0x${sge.lkey.toString(16)} is no ODP MR of the PD`,
      );
    }
    mrs.push(mr);
  }
  rxe.prefetchWq.queueWork(new Work(`${rxe.name}/prefetch`, () => prefetchMrWork(mrs, pf, sgList)));
}

/** lookup_mr() with local write, kept only for an ODP MR. */
function odpMr(rxe: RxeDevice, pd: IbPd, lkey: number): RxeMr | null {
  const mr = lookupMr(rxe, pd, IB_ACCESS_LOCAL_WRITE, lkey);
  if (mr === null || mr.isOdp) return mr;
  rxeMrPut(mr);
  return null;
}

/** rxe_ib_prefetch_sg_list(): each element faulted (and unlocked) in turn; the first error ends it. */
function* prefetchSgList(
  rxe: RxeDevice,
  pd: IbPd,
  advice: number,
  pf: RxePfFlags,
  sgList: readonly IbSge[],
): Co {
  for (const sge of sgList) {
    const mr = odpMr(rxe, pd, sge.lkey);
    if (mr === null)
      throw new Errno(
        'EINVAL',
        `advise_mr: lkey 0x${sge.lkey.toString(16)} is no ODP MR of the PD`,
      );
    try {
      if (advice === IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE && !mr.odp.writable)
        throw new Errno('EPERM', `advise_mr: ${mr.tt.name} is not writable`);
      yield* rxeOdpDoPagefaultAndLock(mr, sge.addr, sge.length, pf);
      mr.odp.umemMutex.unlock();
    } finally {
      rxeMrPut(mr);
    }
  }
}

/** rxe_ib_prefetch_mr_work(): best effort, errors ignored; each MR's reference dropped after. */
function* prefetchMrWork(mrs: readonly RxeMr[], pf: RxePfFlags, sgList: readonly IbSge[]): Co {
  for (let i = 0; i < mrs.length; i++) {
    const mr = mrs[i]!;
    const sge = sgList[i]!;
    try {
      yield* rxeOdpDoPagefaultAndLock(mr, sge.addr, sge.length, pf);
      mr.odp.umemMutex.unlock();
    } catch (e) {
      if (!isErrno(e)) throw e;
    } finally {
      rxeMrPut(mr);
    }
  }
}
