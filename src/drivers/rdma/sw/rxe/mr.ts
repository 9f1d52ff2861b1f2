/**
 * Memory regions of the software RDMA device (drivers/infiniband/sw/rxe/rxe_mr.c and
 * rxe_verbs.c): rxe_reg_user_mr, rxe_dereg_mr with the pool reference the verbs and prefetch
 * work hold, lookup_mr, mr_check_range and rxe_mr_copy. The CPU copies the data (kmap): for a
 * pinned MR from the pinned pages, for an ODP MR through rxe_odp_mr_copy (odp.ts).
 */

import { WaitQueue } from '../../../../kernel/sync/wait-queue.ts';
import type { Co } from '../../../../kernel/task.ts';
import { Errno } from '../../../../lib/errors.ts';
import { PAGE_SIZE } from '../../../../mm/constants.ts';
import type { Mm } from '../../../../mm/mm.ts';
import type { Process } from '../../../../mm/process.ts';
import { DeviceMr } from '../../core/device-mr.ts';
import { IB_ACCESS_ON_DEMAND, ibAccessWritable, SIZE_MAX } from '../../core/ib-verbs.ts';
import type { IbPd } from '../../core/objects.ts';
import { type IbUmem, ibUmemGet, ibUmemRelease } from '../../core/umem.ts';
import { ibUmemOdpRelease, type UmemOdp } from '../../core/umem-odp.ts';
import type { RxeDevice } from './main.ts';
import { rxeOdpMrCopy, rxeOdpMrInitUser } from './odp.ts';

/** struct rxe_mr. */
export class RxeMr extends DeviceMr {
  readonly rxe: RxeDevice;
  readonly index: number;
  /** RXE_MR_STATE_VALID once set up; INVALID from deregistration on. */
  valid = false;
  /** The pool reference count: the verbs' own, plus lookups and prefetch work in flight. */
  refs = 1;
  readonly refsWait: WaitQueue;

  constructor(
    rxe: RxeDevice,
    index: number,
    pd: IbPd,
    access: number,
    iova: number,
    length: number,
    umem: IbUmem | UmemOdp,
    mm: Mm,
  ) {
    const key = ((index << 8) | (index & 0xff)) >>> 0;
    super(`${rxe.name}/mr${key.toString(16)}`, key, pd, access, iova, length, umem, mm);
    this.rxe = rxe;
    this.index = index;
    this.refsWait = new WaitQueue(`${this.tt.name}.ref`);
  }

  get odp(): UmemOdp {
    if (this.umem.kind !== 'odp') throw new Error(`${this.tt.name} is not an ODP MR`);
    return this.umem;
  }
}

/** rxe_get(): a pool reference (a lookup, a work item). */
export function rxeMrGet(mr: RxeMr): void {
  mr.refs++;
  mr.tracked.get(true);
}

/** rxe_put(): drops a pool reference; the last one lets deregistration finish. */
export function rxeMrPut(mr: RxeMr): void {
  mr.refs--;
  mr.tracked.put();
  if (mr.refs <= 1) mr.refsWait.wakeUpAll();
}

/**
 * rxe_reg_user_mr(): a pinned MR (ib_umem_get) or, with IB_ACCESS_ON_DEMAND, an ODP MR
 * (rxe_odp_mr_init_user: no implicit ODP, EINVAL). The MR is valid, and in the pool, once set up.
 */
export function* rxeRegUserMr(
  rxe: RxeDevice,
  pd: IbPd,
  start: number,
  length: number,
  access: number,
  caller: Process,
): Co<RxeMr> {
  const mm = caller.mm;
  if (mm === null) throw new Errno('EINVAL', `registration by ${caller}, which has no mm`);
  const index = rxe.allocIndex();
  if (access & IB_ACCESS_ON_DEMAND) {
    if (start === 0 && length === SIZE_MAX)
      throw new Errno('EINVAL', `${rxe.name} does not support implicit ODP`);
    const mr = yield* rxeOdpMrInitUser(rxe, index, pd, start, length, access, caller);
    rxe.mrs.set(index, mr);
    return mr;
  }
  const umem = yield* ibUmemGet(caller, start, length, ibAccessWritable(access));
  const mr = new RxeMr(rxe, index, pd, access, start, length, umem, mm);
  mr.valid = true;
  rxe.mrs.set(index, mr);
  return mr;
}

/**
 * rxe_dereg_mr(): the MR turns invalid (no new lookup succeeds), deregistration waits for the
 * references in flight, then the umem is released (an ODP umem's subscription removed).
 */
export function* rxeDeregMr(rxe: RxeDevice, mr: RxeMr): Co {
  mr.valid = false;
  rxe.mrs.delete(mr.index);
  mr.tracked.revoke();
  yield* mr.refsWait.waitEvent(() => mr.refs <= 1);
  const umem = mr.umem;
  if (umem.kind === 'odp') {
    yield* umem.umemMutex.lock();
    mr.tt.unmapAll(mr.mm);
    umem.privateMr = null;
    umem.umemMutex.unlock();
    yield* ibUmemOdpRelease(umem);
  } else if (umem.kind === 'pinned') ibUmemRelease(umem);
  mr.tt.retire();
  mr.tracked.free();
}

/**
 * lookup_mr(): the valid MR behind `key` of PD `pd` granting every right of `access`, with a
 * pool reference; null otherwise (a protection error for the caller).
 */
export function lookupMr(rxe: RxeDevice, pd: IbPd, access: number, key: number): RxeMr | null {
  const mr = rxe.mrs.get(key >>> 8);
  if (mr === undefined || mr.lkey !== key || mr.pd !== pd || !mr.valid) return null;
  if ((mr.access & access) !== access) return null;
  rxeMrGet(mr);
  return mr;
}

/** mr_check_range(): [iova, iova + length) lies inside the MR. */
export function mrCheckRange(mr: RxeMr, iova: number, length: number): boolean {
  return mr.covers(iova, length);
}

/**
 * rxe_mr_copy(): copies between `buf` and the MR's [iova, iova + buf.length), into the MR when
 * `toMr`. EFAULT when an ODP page cannot be had (see rxe_odp_mr_copy).
 */
export function* rxeMrCopy(mr: RxeMr, iova: number, buf: Uint8Array, toMr: boolean): Co {
  if (buf.length === 0) return;
  if (mr.isOdp) return yield* rxeOdpMrCopy(mr, iova, buf, toMr);
  const umem = mr.umem as IbUmem;
  for (let done = 0; done < buf.length; ) {
    const addr = iova + done;
    const i = Math.floor((addr - umem.start) / PAGE_SIZE);
    const within = addr % PAGE_SIZE;
    const len = Math.min(buf.length - done, PAGE_SIZE - within);
    const frame = umem.pages[i]!;
    mr.tt.dma(frame.pfn, umem.gens[i]!, toMr);
    if (toMr) frame.data.write(within, buf, done, len);
    else frame.data.read(within, buf, done, len);
    done += len;
  }
}
