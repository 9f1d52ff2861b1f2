/**
 * The send and receive queues of an RC queue pair as the modelled devices keep them, and what
 * every device does the same way with them: post_send and post_recv checks, completions, the
 * flush of the error state, and the requester's loop over the send queue (the per-WQE work is
 * the device's own).
 */
import { kernel } from '../../../kernel/kernel.ts';
import type { Co } from '../../../kernel/task.ts';
import { Errno } from '../../../lib/errors.ts';
import type { IbWcStatus } from './ib-verbs.ts';
import { IbQp, type IbRecvWr, type IbSendWr, type IbSge } from './objects.ts';

/** A posted send WQE and the requester's progress through it. */
export interface SendWqe {
  readonly wr: IbSendWr;
  /** The packet sequence number of its request (what the responder dedups atomics by). */
  readonly psn: number;
  /** Message bytes. */
  readonly total: number;
  /** Bytes acknowledged so far (the hardware's bytes_committed). */
  sent: number;
}

/** A posted receive WQE. */
export interface RecvWqe {
  readonly wr: IbRecvWr;
  readonly total: number;
}

/** An RC QP with its queues. */
export abstract class RcQp extends IbQp {
  readonly sq: SendWqe[] = [];
  readonly rq: RecvWqe[] = [];
  /** Responder: bytes of the current SEND message placed into rq[0]. */
  recvOffset = 0;
  /** Responder: the last atomic executed, for a retransmitted request (responder resources). */
  lastAtomic: { readonly psn: number; readonly value: bigint } | null = null;
  private nextPsn = 1;

  /** The device's name, for trace events. */
  abstract readonly devName: string;

  /** A PSN for a new request. */
  allocPsn(): number {
    return this.nextPsn++;
  }

  /** Something the responder side waits on happened (a receive, a state change, ...). */
  abstract responderEvent(): void;
}

/** Message length of a scatter/gather list. */
export function sgeBytes(sgList: readonly IbSge[]): number {
  return sgList.reduce((n, s) => n + s.length, 0);
}

/** ->post_send(): queues the WQE. ENOMEM when the queue is full; EINVAL in a state that sends nothing. */
export function queueSend(qp: RcQp, wr: IbSendWr): void {
  if (qp.state !== 'RTS' && qp.state !== 'ERR')
    throw new Errno('EINVAL', `post_send on ${qp} in state ${qp.state}`);
  if (qp.sq.length >= qp.maxSendWr) throw new Errno('ENOMEM', `${qp}: send queue full`);
  qp.sq.push({ wr, psn: qp.allocPsn(), total: sgeBytes(wr.sgList), sent: 0 });
}

/** ->post_recv(): queues a receive WQE (flushed at once in the error state). */
export function queueRecv(qp: RcQp, wr: IbRecvWr): void {
  if (qp.state === 'RESET') throw new Errno('EINVAL', `post_recv on ${qp} in state RESET`);
  if (qp.rq.length >= qp.maxRecvWr) throw new Errno('ENOMEM', `${qp}: receive queue full`);
  const w = { wr, total: sgeBytes(wr.sgList) };
  if (qp.state === 'ERR') {
    completeRecv(qp, w, 'WR_FLUSH_ERR', 0);
    return;
  }
  qp.rq.push(w);
  qp.responderEvent();
}

/** A send completion (signalled, or any error). */
export function completeSend(qp: RcQp, w: SendWqe, status: IbWcStatus): void {
  if (status === 'SUCCESS' && w.wr.signaled === false) return;
  qp.sendCq.push({
    wrId: w.wr.wrId,
    status,
    opcode: w.wr.opcode,
    byteLen: status === 'SUCCESS' ? w.total : 0,
    qpNum: qp.qpn,
  });
}

/** A receive completion. */
export function completeRecv(qp: RcQp, w: RecvWqe, status: IbWcStatus, byteLen: number): void {
  qp.recvCq.push({ wrId: w.wr.wrId, status, opcode: 'RECV', byteLen, qpNum: qp.qpn });
}

/** The error state: every queued WQE completes flushed. */
export function flushQueues(qp: RcQp): void {
  qp.state = 'ERR';
  for (const w of qp.sq.splice(0)) completeSend(qp, w, 'WR_FLUSH_ERR');
  for (const w of qp.rq.splice(0)) completeRecv(qp, w, 'WR_FLUSH_ERR', 0);
  qp.recvOffset = 0;
  qp.responderEvent();
}

/**
 * The requester: runs the head WQE with `execute` until the queue is empty or the QP leaves
 * RTS. `execute` returns the WQE's final status, or null to look at the QP again (a fault, a
 * state change); an error completion puts the QP in the error state (`onError`).
 */
export function* runSendQueue(
  qp: RcQp,
  execute: (wqe: SendWqe) => Co<IbWcStatus | null>,
  onError: () => void,
): Co {
  for (;;) {
    if (qp.destroyed || qp.state !== 'RTS') return;
    const wqe = qp.sq[0];
    if (wqe === undefined) return;
    const status = yield* execute(wqe);
    if (status === null || qp.sq[0] !== wqe) continue;
    qp.sq.shift();
    completeSend(qp, wqe, status);
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('rdma-wc', { dev: qp.devName, qp: qp.qpn, opcode: wqe.wr.opcode, status });
    if (status !== 'SUCCESS') onError();
  }
}
