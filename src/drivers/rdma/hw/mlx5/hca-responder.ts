/**
 * The modelled HCA's RC responder: what a QP does with an arriving request packet. A missing
 * translation stops the responder side (one outstanding fault per side) and raises a page
 * fault: a SEND or RDMA WRITE is answered with an RNR NAK so the requester retries after the
 * RNR timer; an RDMA READ or atomic request is dropped, and the requester retries after its
 * ACK timeout. Key, PD, rights and bounds violations are NAKed and put the QP in error.
 */
import type { Co } from '../../../../kernel/task.ts';
import { atomicResult, readU64, u64Bytes } from '../../../../lib/u64.ts';
import {
  IB_ACCESS_REMOTE_ATOMIC,
  IB_ACCESS_REMOTE_READ,
  IB_ACCESS_REMOTE_WRITE,
  type IbWcStatus,
  type IbWrOpcode,
} from '../../core/ib-verbs.ts';
import { dmaRead, dmaWrite, translateLocal, translateRemote } from './hca-translate.ts';
import { type Mlx5Qp, qpError, raisePagefault } from './qp.ts';

/** A request packet of an RC message. */
export interface Packet {
  readonly op: IbWrOpcode;
  readonly psn: number;
  /** This packet's bytes within the message, and the message length. */
  readonly offset: number;
  readonly len: number;
  readonly total: number;
  /** SEND / RDMA WRITE payload. */
  readonly data?: Uint8Array;
  /** RDMA and atomics: the remote address of this packet and the key. */
  readonly va?: number;
  readonly rkey?: number;
  readonly compareAdd?: bigint;
  readonly swap?: bigint;
}

/** The responder's answer. */
export type Response =
  | { readonly kind: 'ack' }
  | { readonly kind: 'data'; readonly data: Uint8Array }
  | { readonly kind: 'atomic'; readonly value: bigint }
  | { readonly kind: 'rnr' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'nak'; readonly status: IbWcStatus };

const ACK: Response = { kind: 'ack' };
const RNR: Response = { kind: 'rnr' };
const DROP: Response = { kind: 'drop' };

/** NAK: the responder QP goes to the error state, the requester completes with `status`. */
function nak(qp: Mlx5Qp, status: IbWcStatus): Response {
  qpError(qp);
  return { kind: 'nak', status };
}

/** Processes one request packet at responder `qp` (one step: translation and DMA together). */
export function* respond(qp: Mlx5Qp, pkt: Packet): Co<Response> {
  yield;
  if (qp.destroyed || (qp.state !== 'RTR' && qp.state !== 'RTS')) return DROP;
  const ch = qp.respPf;
  if (ch.error) {
    // PAGE_FAULT_RESUME with an error: the operation the fault stopped fails.
    ch.error = false;
    return nak(qp, 'REM_ACCESS_ERR');
  }
  if (ch.suspended) return pkt.op === 'SEND' || pkt.op === 'RDMA_WRITE' ? RNR : DROP;
  switch (pkt.op) {
    case 'SEND':
      return receive(qp, pkt);
    case 'RDMA_WRITE':
      return write(qp, pkt);
    case 'RDMA_READ':
      return read(qp, pkt);
    default:
      return atomic(qp, pkt);
  }
}

/** A SEND packet scattered into the receive WQE at the head of the RQ. */
function receive(qp: Mlx5Qp, pkt: Packet): Response {
  const w = qp.rq[0];
  if (w === undefined) return RNR;
  if (pkt.total > w.total) {
    qp.rq.shift();
    qp.recvCq.push({
      wrId: w.wr.wrId,
      status: 'LOC_LEN_ERR',
      opcode: 'RECV',
      byteLen: 0,
      qpNum: qp.qpn,
    });
    return nak(qp, 'REM_INV_REQ_ERR');
  }
  const t = translateLocal(qp.dev, qp.pd, w.wr.sgList, pkt.offset, pkt.len, true);
  if (t.kind === 'error') {
    qp.rq.shift();
    qp.recvCq.push({
      wrId: w.wr.wrId,
      status: t.status,
      opcode: 'RECV',
      byteLen: 0,
      qpNum: qp.qpn,
    });
    return nak(qp, 'REM_OP_ERR');
  }
  if (t.kind === 'fault') {
    raisePagefault(qp, qp.respPf, {
      subtype: 'wqe',
      requester: false,
      bytesCommitted: pkt.offset,
      wqe: w,
    });
    return RNR;
  }
  dmaWrite(t.pieces, pkt.data!);
  if (pkt.offset + pkt.len >= pkt.total) {
    qp.rq.shift();
    qp.recvCq.push({
      wrId: w.wr.wrId,
      status: 'SUCCESS',
      opcode: 'RECV',
      byteLen: pkt.total,
      qpNum: qp.qpn,
    });
  }
  return ACK;
}

/** The RDMA fault the responder raises for the rest of the operation from this packet. */
function rdmaFault(qp: Mlx5Qp, pkt: Packet): void {
  raisePagefault(qp, qp.respPf, {
    subtype: 'rdma',
    requester: false,
    bytesCommitted: 0,
    rkey: pkt.rkey!,
    va: pkt.va!,
    opLen: pkt.total - pkt.offset,
    packetSize: pkt.len,
  });
}

function write(qp: Mlx5Qp, pkt: Packet): Response {
  const t = translateRemote(
    qp.dev,
    qp.pd,
    pkt.rkey!,
    pkt.va!,
    pkt.len,
    IB_ACCESS_REMOTE_WRITE,
    true,
  );
  if (t.kind === 'error') return nak(qp, t.status);
  if (t.kind === 'fault') {
    rdmaFault(qp, pkt);
    return RNR;
  }
  dmaWrite(t.pieces, pkt.data!);
  return ACK;
}

function read(qp: Mlx5Qp, pkt: Packet): Response {
  const t = translateRemote(
    qp.dev,
    qp.pd,
    pkt.rkey!,
    pkt.va!,
    pkt.len,
    IB_ACCESS_REMOTE_READ,
    false,
  );
  if (t.kind === 'error') return nak(qp, t.status);
  if (t.kind === 'fault') {
    rdmaFault(qp, pkt);
    return DROP;
  }
  return { kind: 'data', data: dmaRead(t.pieces, pkt.len) };
}

/**
 * An 8-byte atomic, read and written in one step. A retransmitted request (same PSN) gets the
 * result of its first execution (the responder's atomic resources), so it is applied once.
 */
function atomic(qp: Mlx5Qp, pkt: Packet): Response {
  const cached = qp.lastAtomic;
  if (cached !== null && cached.psn === pkt.psn) return { kind: 'atomic', value: cached.value };
  if (pkt.va! % 8 !== 0) return nak(qp, 'REM_INV_REQ_ERR');
  const t = translateRemote(qp.dev, qp.pd, pkt.rkey!, pkt.va!, 8, IB_ACCESS_REMOTE_ATOMIC, true);
  if (t.kind === 'error') return nak(qp, t.status);
  if (t.kind === 'fault') {
    rdmaFault(qp, pkt);
    return DROP;
  }
  const old = readU64(dmaRead(t.pieces, 8));
  const next = atomicResult(pkt.op === 'ATOMIC_FETCH_AND_ADD', old, pkt.compareAdd!, pkt.swap!);
  dmaWrite(t.pieces, u64Bytes(next));
  qp.lastAtomic = { psn: pkt.psn, value: old };
  return { kind: 'atomic', value: old };
}
