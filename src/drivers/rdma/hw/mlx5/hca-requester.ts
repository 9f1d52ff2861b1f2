/**
 * The modelled HCA's RC requester: the send-queue engine that executes WQEs in order, one
 * packet (path MTU) at a time, over the wire to the connected responder. It follows RC
 * semantics: progress is what the responder acknowledged (the WQE's bytes_committed); an RNR
 * NAK is retried after the responder's RNR timer up to rnr_retry times (7: for ever); a lost
 * response after the ACK timeout up to retry_cnt times; a NAK or an exhausted counter completes
 * the WQE in error and puts the QP in the error state. A missing local translation stops the
 * send queue and raises a requester (WQE) page fault; it goes on at PAGE_FAULT_RESUME.
 */
import { spend } from '../../../../cost/charge.ts';
import { delay } from '../../../../kernel/context.ts';
import { kernel } from '../../../../kernel/kernel.ts';
import type { Co } from '../../../../kernel/task.ts';
import { u64Bytes } from '../../../../lib/u64.ts';
import {
  ackTimeoutNs,
  type IbWcStatus,
  RNR_RETRY_INFINITE,
  RNR_TIMER_NS,
} from '../../core/ib-verbs.ts';
import { runSendQueue, type SendWqe } from '../../core/rc-queues.ts';
import { type Packet, type Response, respond } from './hca-responder.ts';
import { dmaRead, dmaWrite, type Translation, translateLocal } from './hca-translate.ts';
import { type Mlx5Qp, qpError, raisePagefault } from './qp.ts';

/** Path MTU of the modelled RC connections, in bytes. */
export const MTU = 4096;

/** Retry counters of the WQE being executed (reset by forward progress). */
interface Retries {
  rnr: number;
  timeout: number;
}

/** The send-queue engine: runs until the queue is empty or the QP leaves RTS. */
export function requesterEngine(qp: Mlx5Qp): Co {
  return runSendQueue(
    qp,
    (wqe) => execute(qp, wqe),
    () => qpError(qp),
  );
}

/** One attempt at a WQE: its final status, or null to look at the QP again (a fault, a state change). */
function* execute(qp: Mlx5Qp, wqe: SendWqe): Co<IbWcStatus | null> {
  const op = wqe.wr.opcode;
  if (op === 'SEND' || op === 'RDMA_WRITE') return yield* push(qp, wqe);
  if (op === 'RDMA_READ') return yield* pull(qp, wqe);
  return yield* atomic(qp, wqe);
}

/** SEND and RDMA WRITE: read local data, send it packet by packet. */
function* push(qp: Mlx5Qp, wqe: SendWqe): Co<IbWcStatus | null> {
  const wr = wqe.wr;
  const retries: Retries = { rnr: 0, timeout: 0 };
  do {
    if (qp.state !== 'RTS') return null;
    const n = Math.min(MTU, wqe.total - wqe.sent);
    const src = translateLocal(qp.dev, qp.pd, wr.sgList, wqe.sent, n, false);
    if (src.kind !== 'ok') return yield* localFailure(qp, wqe, src);
    const r = yield* transmit(qp, {
      op: wr.opcode,
      psn: wqe.psn,
      offset: wqe.sent,
      len: n,
      total: wqe.total,
      data: dmaRead(src.pieces, n),
      ...(wr.opcode === 'RDMA_WRITE' ? { va: wr.remoteAddr! + wqe.sent, rkey: wr.rkey! } : {}),
    });
    if (r.kind === 'ack') {
      wqe.sent += n;
      retries.rnr = 0;
      retries.timeout = 0;
      if (wqe.total === 0) break;
      continue;
    }
    const s = yield* backOff(qp, r, retries);
    if (s !== null) return s;
  } while (wqe.sent < wqe.total);
  return 'SUCCESS';
}

/** RDMA READ: request each MTU of the remote range, scatter each response locally. */
function* pull(qp: Mlx5Qp, wqe: SendWqe): Co<IbWcStatus | null> {
  const wr = wqe.wr;
  const retries: Retries = { rnr: 0, timeout: 0 };
  while (wqe.sent < wqe.total) {
    if (qp.state !== 'RTS') return null;
    const n = Math.min(MTU, wqe.total - wqe.sent);
    const r = yield* transmit(qp, {
      op: 'RDMA_READ',
      psn: wqe.psn,
      offset: wqe.sent,
      len: n,
      total: wqe.total,
      va: wr.remoteAddr! + wqe.sent,
      rkey: wr.rkey!,
    });
    if (r.kind !== 'data') {
      const s = yield* backOff(qp, r, retries);
      if (s !== null) return s;
      continue;
    }
    const dst = translateLocal(qp.dev, qp.pd, wr.sgList, wqe.sent, n, true);
    if (dst.kind !== 'ok') return yield* localFailure(qp, wqe, dst);
    dmaWrite(dst.pieces, r.data);
    wqe.sent += n;
    retries.rnr = 0;
    retries.timeout = 0;
  }
  return 'SUCCESS';
}

/** Fetch-and-add and compare-and-swap: the original value lands in the 8-byte local buffer. */
function* atomic(qp: Mlx5Qp, wqe: SendWqe): Co<IbWcStatus | null> {
  const wr = wqe.wr;
  if (wqe.total !== 8) return 'LOC_LEN_ERR';
  const retries: Retries = { rnr: 0, timeout: 0 };
  for (;;) {
    if (qp.state !== 'RTS') return null;
    const r = yield* transmit(qp, {
      op: wr.opcode,
      psn: wqe.psn,
      offset: 0,
      len: 8,
      total: 8,
      va: wr.remoteAddr!,
      rkey: wr.rkey!,
      compareAdd: BigInt.asUintN(64, BigInt(wr.compareAdd ?? 0)),
      swap: BigInt.asUintN(64, BigInt(wr.swap ?? 0)),
    });
    if (r.kind === 'atomic') {
      const dst = translateLocal(qp.dev, qp.pd, wr.sgList, 0, 8, true);
      if (dst.kind !== 'ok') return yield* localFailure(qp, wqe, dst);
      dmaWrite(dst.pieces, u64Bytes(r.value));
      wqe.sent = 8;
      return 'SUCCESS';
    }
    const s = yield* backOff(qp, r, retries);
    if (s !== null) return s;
  }
}

/**
 * A local translation failed: a protection error completes the WQE; a missing page stops the
 * send queue with a requester WQE fault until PAGE_FAULT_RESUME (an error resume fails the WQE).
 */
function* localFailure(qp: Mlx5Qp, wqe: SendWqe, t: Translation): Co<IbWcStatus | null> {
  if (t.kind === 'error') return t.status;
  raisePagefault(qp, qp.reqPf, { subtype: 'wqe', requester: true, bytesCommitted: wqe.sent, wqe });
  yield* qp.sqWake.waitEvent(() => !qp.reqPf.suspended || qp.state !== 'RTS' || qp.destroyed);
  if (qp.reqPf.error && qp.state === 'RTS') {
    qp.reqPf.error = false;
    return 'LOC_PROT_ERR';
  }
  return null;
}

/**
 * A packet over the wire to the connected responder and its answer back. The HCA pipelines a
 * message's packets: each costs its serialisation, and the round trip is paid once, by the
 * last packet (or by the one a NAK, RNR NAK or loss answers).
 */
function* transmit(qp: Mlx5Qp, pkt: Packet): Co<Response> {
  const peer = qp.dest as Mlx5Qp;
  const outbound = pkt.op === 'SEND' || pkt.op === 'RDMA_WRITE' ? pkt.len : 0;
  yield* spend('wire.byte', outbound);
  const r = yield* respond(peer, pkt);
  const k = kernel();
  const back = r.kind === 'data' ? pkt.len : 0;
  const last = pkt.offset + pkt.len >= pkt.total;
  const rtt =
    last || (r.kind !== 'ack' && r.kind !== 'data') ? 2 * k.costs.draw('wire.latency') : 0;
  yield* delay(k.costs.draw('wire.byte', back) + rtt);
  if (k.trace.on && r.kind !== 'ack' && r.kind !== 'data' && r.kind !== 'atomic')
    k.trace.emit('rdma-nak', { dev: qp.dev.name, qp: qp.qpn, kind: r.kind, psn: pkt.psn });
  return r;
}

/**
 * An RNR NAK or a lost response: wait the responder's RNR timer or the ACK timeout and retry,
 * unless the counter is exhausted. A NAK fails the WQE.
 */
function* backOff(qp: Mlx5Qp, r: Response, retries: Retries): Co<IbWcStatus | null> {
  const peer = qp.dest as Mlx5Qp;
  if (r.kind === 'nak') return r.status;
  if (r.kind === 'rnr') {
    if (qp.rnrRetry !== RNR_RETRY_INFINITE && ++retries.rnr > qp.rnrRetry)
      return 'RNR_RETRY_EXC_ERR';
    yield* wireTimer(qp, RNR_TIMER_NS[peer.minRnrTimer]!);
    return null;
  }
  if (++retries.timeout > qp.retryCnt) return 'RETRY_EXC_ERR';
  yield* wireTimer(qp, ackTimeoutNs(qp.timeout));
  return null;
}

/**
 * The requester's retry timer. In virtual-time runs it simply expires. Under an exploring
 * strategy, where a timer only fires when nothing else can run, the retry also happens at the
 * responder's next event (a resume, a posted receive, a state change): the interleavings of a
 * retransmission with the fault handling are explored without waiting for the whole world to
 * block.
 */
function* wireTimer(qp: Mlx5Qp, ns: number): Co {
  const peer = qp.dest as Mlx5Qp;
  const k = kernel();
  const epoch = peer.respEpoch;
  const woken = k.strategy.timed ? () => false : () => peer.respEpoch !== epoch;
  if (Number.isFinite(ns)) yield* peer.respEvents.waitEventTimeout(woken, ns);
  else yield* peer.respEvents.waitEvent(woken);
}
