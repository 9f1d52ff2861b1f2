// What the RDMA scenarios share: a process's verbs endpoint, connected RC queue pairs, and a
// work request posted and waited for.
import type { IbDevice } from '../drivers/rdma/core/device.ts';
import type { IbCq, IbPd, IbQp, IbSendWr, IbUcontext, IbWc } from '../drivers/rdma/core/objects.ts';
import { ibUverbsGetContext, ibUverbsOpen, type UverbsFile } from '../drivers/rdma/core/uverbs.ts';
import {
  ibAllocPd,
  ibCreateCq,
  ibCreateQp,
  ibModifyQp,
  ibPostSend,
  ibWaitCq,
} from '../drivers/rdma/core/verbs.ts';
import type { Co } from '../kernel/task.ts';
import type { Process } from '../mm/process.ts';

/** A process's verbs state: its open file, context and PD. */
export interface Endpoint {
  readonly proc: Process;
  readonly device: IbDevice;
  readonly file: UverbsFile;
  readonly ctx: IbUcontext;
  readonly pd: IbPd;
}

/** Opens `device` for `proc` and allocates a context and a PD (ibv_open_device, ibv_alloc_pd). */
export function* openEndpoint(device: IbDevice, proc: Process): Co<Endpoint> {
  const file = yield* ibUverbsOpen(device);
  const ctx = yield* ibUverbsGetContext(file, proc);
  return { proc, device, file, ctx, pd: ibAllocPd(ctx) };
}

/** An RC QP with its own CQ. */
export interface QpEnd {
  readonly qp: IbQp;
  readonly cq: IbCq;
}

/** RC connection settings (min_rnr_timer of each responder, retry counts). */
export interface RcAttrs {
  readonly minRnrTimer?: number;
  readonly rnrRetry?: number;
  readonly retryCnt?: number;
  readonly timeout?: number;
}

/** Two QPs (one per endpoint), each with a CQ, connected to each other and in RTS. */
export function* connectedPair(a: Endpoint, b: Endpoint, attrs: RcAttrs = {}): Co<[QpEnd, QpEnd]> {
  const ends: QpEnd[] = [];
  for (const e of [a, b]) {
    const cq = ibCreateCq(e.ctx, 256);
    const qp = yield* ibCreateQp(e.pd, { sendCq: cq, recvCq: cq });
    yield* ibModifyQp(qp, { state: 'INIT' });
    ends.push({ qp, cq });
  }
  const [x, y] = ends as [QpEnd, QpEnd];
  for (const [me, peer] of [
    [x, y],
    [y, x],
  ] as const) {
    yield* ibModifyQp(me.qp, {
      state: 'RTR',
      dest: peer.qp,
      ...(attrs.minRnrTimer === undefined ? {} : { minRnrTimer: attrs.minRnrTimer }),
    });
  }
  for (const me of [x, y]) {
    yield* ibModifyQp(me.qp, {
      state: 'RTS',
      ...(attrs.rnrRetry === undefined ? {} : { rnrRetry: attrs.rnrRetry }),
      ...(attrs.retryCnt === undefined ? {} : { retryCnt: attrs.retryCnt }),
      ...(attrs.timeout === undefined ? {} : { timeout: attrs.timeout }),
    });
  }
  return [x, y];
}

/** Posts one send WR and waits for its completion (the QP's CQ holds nothing else). */
export function* postAndWait(end: QpEnd, wr: IbSendWr): Co<IbWc> {
  ibPostSend(end.qp, wr);
  const [wc] = yield* ibWaitCq(end.cq, 1);
  return wc!;
}
