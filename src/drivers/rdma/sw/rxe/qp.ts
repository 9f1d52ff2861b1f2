/**
 * Queue pairs of the software RDMA device (drivers/infiniband/sw/rxe: rxe_qp.c, rxe_req.c,
 * rxe_resp.c, rxe_comp.c): create, modify, destroy, post_send and post_recv, and the RC
 * requester as a work item in process context. It executes WQEs in order, one MTU at a time,
 * copying local data through the MRs; the responder's work for each packet runs on arrival
 * (rxe_responder). Neither side ever takes a page fault from the "hardware": an ODP page is
 * faulted in by the copy itself, and one that cannot be had is a protection error locally, a
 * NAK (remote access error) at the responder. A missing receive is an RNR NAK, retried after
 * the responder's RNR timer.
 */
import { spend } from '../../../../cost/charge.ts';
import { delay, join } from '../../../../kernel/context.ts';
import { kernel } from '../../../../kernel/kernel.ts';
import { WaitQueue } from '../../../../kernel/sync/wait-queue.ts';
import type { Co, Task } from '../../../../kernel/task.ts';
import { Errno, isErrno } from '../../../../lib/errors.ts';
import { atomicResult, readU64, u64Bytes } from '../../../../lib/u64.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_REMOTE_ATOMIC,
  IB_ACCESS_REMOTE_READ,
  IB_ACCESS_REMOTE_WRITE,
  type IbWcStatus,
  RNR_RETRY_INFINITE,
  RNR_TIMER_NS,
} from '../../core/ib-verbs.ts';
import type {
  IbPd,
  IbQpAttr,
  IbQpInitAttr,
  IbRecvWr,
  IbSendWr,
  IbSge,
} from '../../core/objects.ts';
import {
  completeRecv,
  flushQueues,
  queueRecv,
  queueSend,
  RcQp,
  runSendQueue,
  type SendWqe,
} from '../../core/rc-queues.ts';
import type { RxeDevice } from './main.ts';
import { lookupMr, mrCheckRange, type RxeMr, rxeMrCopy, rxeMrPut } from './mr.ts';
import { rxeOdpAtomicOp } from './odp.ts';

/** The path MTU rxe uses here (IB_MTU_4096). */
const MTU = 4096;

/** What the responder answers a request packet with. */
type Response =
  | { readonly kind: 'ack' }
  | { readonly kind: 'data'; readonly data: Uint8Array }
  | { readonly kind: 'atomic'; readonly value: bigint }
  | { readonly kind: 'rnr' }
  | { readonly kind: 'nak'; readonly status: IbWcStatus };

/** struct rxe_qp. */
export class RxeQp extends RcQp {
  readonly rxe: RxeDevice;
  engine: Task | null = null;
  /** Responder events (a posted receive, a state change): an RNR wait ends early at one. */
  readonly respEvents: WaitQueue;

  constructor(rxe: RxeDevice, qpn: number, pd: IbPd, attr: IbQpInitAttr) {
    super(qpn, pd, attr);
    this.rxe = rxe;
    this.respEvents = new WaitQueue(`${rxe.name}:qp${qpn}.resp`);
  }

  get devName(): string {
    return this.rxe.name;
  }

  responderEvent(): void {
    this.respEvents.wakeUpAll();
  }

  override toString(): string {
    return `${this.rxe.name}:qp${this.qpn}`;
  }
}

/** rxe_create_qp(): a QP in RESET. */
export function* rxeCreateQp(rxe: RxeDevice, pd: IbPd, attr: IbQpInitAttr): Co<RxeQp> {
  yield* delay(0);
  const qp = new RxeQp(rxe, rxe.allocQpn(), pd, attr);
  rxe.qps.set(qp.qpn, qp);
  return qp;
}

/** rxe_modify_qp(): the core checked the transition. */
export function* rxeModifyQp(qp: RxeQp, attr: IbQpAttr): Co {
  yield* delay(0);
  if (attr.dest !== undefined && !(attr.dest instanceof RxeQp))
    throw new Errno('EINVAL', `${qp}: the peer must be a QP of a software RDMA device`);
  if (attr.dest !== undefined) qp.dest = attr.dest;
  if (attr.minRnrTimer !== undefined) qp.minRnrTimer = attr.minRnrTimer;
  if (attr.timeout !== undefined) qp.timeout = attr.timeout;
  if (attr.retryCnt !== undefined) qp.retryCnt = attr.retryCnt;
  if (attr.rnrRetry !== undefined) qp.rnrRetry = attr.rnrRetry;
  if (attr.state === 'ERR') flushQueues(qp);
  else qp.state = attr.state;
  if (attr.state === 'RESET') {
    qp.sq.length = 0;
    qp.rq.length = 0;
    qp.recvOffset = 0;
  }
  qp.respEvents.wakeUpAll();
}

/** rxe_destroy_qp(): the QP leaves the pool; its requester work finishes first. */
export function* rxeDestroyQp(qp: RxeQp): Co {
  qp.rxe.qps.delete(qp.qpn);
  qp.destroyed = true;
  qp.respEvents.wakeUpAll();
  const engine = qp.engine;
  if (engine !== null) yield* join(engine);
}

/** rxe_post_send(): queues the WQE and schedules the requester. */
export function rxePostSend(qp: RxeQp, wr: IbSendWr): void {
  queueSend(qp, wr);
  if (qp.engine !== null) return;
  qp.engine = kernel().spawn(`${qp}.req`, function* () {
    try {
      yield* runSendQueue(
        qp,
        (wqe) => execute(qp, wqe),
        () => flushQueues(qp),
      );
    } finally {
      qp.engine = null;
    }
  });
}

/** rxe_post_recv(): queues a receive WQE (flushed at once in the error state). */
export function rxePostRecv(qp: RxeQp, wr: IbRecvWr): void {
  queueRecv(qp, wr);
}

/**
 * copy_data(): [offset, offset + buf.length) of a scatter/gather list, through lkeys of `pd`
 * granting `access`, into (`toMr`) or out of the MRs. False on a bad key or range, or a page
 * that cannot be had (LOC_PROT_ERR for the caller).
 */
function* copyData(
  rxe: RxeDevice,
  pd: IbPd,
  access: number,
  sgList: readonly IbSge[],
  offset: number,
  buf: Uint8Array,
  toMr: boolean,
): Co<boolean> {
  let at = 0;
  for (const sge of sgList) {
    const lo = Math.max(offset, at);
    const hi = Math.min(offset + buf.length, at + sge.length);
    const base = at;
    at += sge.length;
    if (hi <= lo) continue;
    const mr = lookupMr(rxe, pd, access, sge.lkey);
    if (mr === null) return false;
    try {
      if (!mrCheckRange(mr, sge.addr, sge.length)) return false;
      const part = buf.subarray(lo - offset, hi - offset);
      yield* rxeMrCopy(mr, sge.addr + (lo - base), part, toMr);
    } catch (e) {
      if (isErrno(e)) return false;
      throw e;
    } finally {
      rxeMrPut(mr);
    }
  }
  return true;
}

/** One attempt at a WQE: its status, or null to look at the QP again. */
function* execute(qp: RxeQp, wqe: SendWqe): Co<IbWcStatus | null> {
  let rnr = 0;
  for (;;) {
    if (qp.state !== 'RTS') return null;
    const r = yield* step(qp, wqe);
    if (r === 'done') return 'SUCCESS';
    if (r === 'more') {
      rnr = 0;
      continue;
    }
    if (r !== 'rnr') return r;
    if (qp.rnrRetry !== RNR_RETRY_INFINITE && ++rnr > qp.rnrRetry) return 'RNR_RETRY_EXC_ERR';
    const peer = qp.dest as RxeQp;
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('rdma-nak', { dev: qp.rxe.name, qp: qp.qpn, kind: 'rnr', psn: wqe.psn });
    const epoch = peer.rq.length;
    const woken = k.strategy.timed ? () => false : () => peer.rq.length !== epoch;
    yield* peer.respEvents.waitEventTimeout(woken, RNR_TIMER_NS[peer.minRnrTimer]!);
  }
}

/** One packet of the WQE: 'more', 'done', 'rnr', or a final error status. */
function* step(qp: RxeQp, wqe: SendWqe): Co<'more' | 'done' | 'rnr' | IbWcStatus> {
  const wr = wqe.wr;
  const peer = qp.dest as RxeQp;
  const op = wr.opcode;
  yield* spend('rxe.packet');
  if (op === 'SEND' || op === 'RDMA_WRITE') {
    const n = Math.min(MTU, wqe.total - wqe.sent);
    const data = new Uint8Array(n);
    if (!(yield* copyData(qp.rxe, qp.pd, 0, wr.sgList, wqe.sent, data, false)))
      return 'LOC_PROT_ERR';
    const r = yield* rxeResponder(peer, {
      op,
      psn: wqe.psn,
      offset: wqe.sent,
      total: wqe.total,
      data,
      va: (wr.remoteAddr ?? 0) + wqe.sent,
      rkey: wr.rkey ?? 0,
    });
    if (r.kind === 'rnr') return 'rnr';
    if (r.kind === 'nak') return r.status;
    wqe.sent += n;
    return wqe.sent >= wqe.total ? 'done' : 'more';
  }
  if (op === 'RDMA_READ') {
    const n = Math.min(MTU, wqe.total - wqe.sent);
    const r = yield* rxeResponder(peer, {
      op,
      psn: wqe.psn,
      offset: wqe.sent,
      total: n,
      va: wr.remoteAddr! + wqe.sent,
      rkey: wr.rkey!,
    });
    if (r.kind === 'nak') return r.status;
    if (r.kind !== 'data') return 'REM_OP_ERR';
    if (!(yield* copyData(qp.rxe, qp.pd, IB_ACCESS_LOCAL_WRITE, wr.sgList, wqe.sent, r.data, true)))
      return 'LOC_PROT_ERR';
    wqe.sent += n;
    return wqe.sent >= wqe.total ? 'done' : 'more';
  }
  if (wqe.total !== 8) return 'LOC_LEN_ERR';
  const r = yield* rxeResponder(peer, {
    op,
    psn: wqe.psn,
    offset: 0,
    total: 8,
    va: wr.remoteAddr!,
    rkey: wr.rkey!,
    compareAdd: BigInt.asUintN(64, BigInt(wr.compareAdd ?? 0)),
    swap: BigInt.asUintN(64, BigInt(wr.swap ?? 0)),
  });
  if (r.kind === 'nak') return r.status;
  if (r.kind !== 'atomic') return 'REM_OP_ERR';
  if (
    !(yield* copyData(qp.rxe, qp.pd, IB_ACCESS_LOCAL_WRITE, wr.sgList, 0, u64Bytes(r.value), true))
  )
    return 'LOC_PROT_ERR';
  wqe.sent = 8;
  return 'done';
}

/** A request packet. */
interface Packet {
  readonly op: IbSendWr['opcode'];
  readonly psn: number;
  readonly offset: number;
  readonly total: number;
  readonly data?: Uint8Array;
  readonly va: number;
  readonly rkey: number;
  readonly compareAdd?: bigint;
  readonly swap?: bigint;
}

/** A NAK: the responder QP goes to the error state. */
function nak(qp: RxeQp, status: IbWcStatus): Response {
  flushQueues(qp);
  return { kind: 'nak', status };
}

/**
 * rxe_responder() for one packet: a SEND lands in the head receive WQE (RNR without one); RDMA
 * and atomics go through the rkey (check_rkey: PD, rights, range), and a copy that cannot get
 * its pages is a remote access error.
 */
function* rxeResponder(qp: RxeQp, pkt: Packet): Co<Response> {
  yield* spend('rxe.packet');
  if (qp.destroyed || (qp.state !== 'RTR' && qp.state !== 'RTS')) return { kind: 'rnr' };
  if (pkt.op === 'SEND') {
    const w = qp.rq[0];
    if (w === undefined) return { kind: 'rnr' };
    if (pkt.total > w.total) {
      qp.rq.shift();
      completeRecv(qp, w, 'LOC_LEN_ERR', 0);
      return nak(qp, 'REM_INV_REQ_ERR');
    }
    const ok = yield* copyData(
      qp.rxe,
      qp.pd,
      IB_ACCESS_LOCAL_WRITE,
      w.wr.sgList,
      pkt.offset,
      pkt.data!,
      true,
    );
    if (!ok) {
      qp.rq.shift();
      completeRecv(qp, w, 'LOC_PROT_ERR', 0);
      return nak(qp, 'REM_OP_ERR');
    }
    if (pkt.offset + pkt.data!.length >= pkt.total) {
      qp.rq.shift();
      completeRecv(qp, w, 'SUCCESS', pkt.total);
    }
    return { kind: 'ack' };
  }
  const isAtomic = pkt.op !== 'RDMA_WRITE' && pkt.op !== 'RDMA_READ';
  if (isAtomic && qp.lastAtomic?.psn === pkt.psn)
    return { kind: 'atomic', value: qp.lastAtomic.value };
  const right =
    pkt.op === 'RDMA_WRITE'
      ? IB_ACCESS_REMOTE_WRITE
      : pkt.op === 'RDMA_READ'
        ? IB_ACCESS_REMOTE_READ
        : IB_ACCESS_REMOTE_ATOMIC;
  const len = pkt.op === 'RDMA_WRITE' ? pkt.data!.length : isAtomic ? 8 : pkt.total;
  const mr = lookupMr(qp.rxe, qp.pd, right, pkt.rkey);
  if (mr === null) return nak(qp, 'REM_ACCESS_ERR');
  try {
    if (!mrCheckRange(mr, pkt.va, len)) return nak(qp, 'REM_ACCESS_ERR');
    if (isAtomic) return yield* atomic(qp, mr, pkt);
    const buf = pkt.op === 'RDMA_WRITE' ? pkt.data! : new Uint8Array(len);
    try {
      yield* rxeMrCopy(mr, pkt.va, buf, pkt.op === 'RDMA_WRITE');
    } catch (e) {
      if (isErrno(e)) return nak(qp, 'REM_ACCESS_ERR');
      throw e;
    }
    return pkt.op === 'RDMA_WRITE' ? { kind: 'ack' } : { kind: 'data', data: buf };
  } finally {
    rxeMrPut(mr);
  }
}

/** The responder's atomic: rxe_odp_atomic_op for ODP, the pinned page under the lock otherwise. */
function* atomic(qp: RxeQp, mr: RxeMr, pkt: Packet): Co<Response> {
  const fetchAdd = pkt.op === 'ATOMIC_FETCH_AND_ADD';
  let value: bigint;
  if (mr.isOdp) {
    const r = yield* rxeOdpAtomicOp(mr, pkt.va, fetchAdd, pkt.compareAdd!, pkt.swap!);
    if ('error' in r)
      return nak(qp, r.error === 'MISALIGNED' ? 'REM_INV_REQ_ERR' : 'REM_ACCESS_ERR');
    value = r.value;
  } else {
    if (pkt.va % 8 !== 0) return nak(qp, 'REM_INV_REQ_ERR');
    const word = new Uint8Array(8);
    yield* qp.rxe.atomicOpsLock.lock();
    yield* rxeMrCopy(mr, pkt.va, word, false);
    value = readU64(word);
    yield* rxeMrCopy(
      mr,
      pkt.va,
      u64Bytes(atomicResult(fetchAdd, value, pkt.compareAdd!, pkt.swap!)),
      true,
    );
    qp.rxe.atomicOpsLock.unlock();
  }
  qp.lastAtomic = { psn: pkt.psn, value };
  return { kind: 'atomic', value };
}
