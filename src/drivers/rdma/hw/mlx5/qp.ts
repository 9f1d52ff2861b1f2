/**
 * Queue pairs of the mlx5-like driver (drivers/infiniband/hw/mlx5/qp.c with the ODP parts of
 * 2014): create, modify (mlx5_ib_qp_enable_pagefaults on RESET→INIT,
 * mlx5_ib_qp_disable_pagefaults with its flush on →RESET/ERR and destroy), destroy, the
 * user-space doorbells (post_send / post_recv), and the page-fault event path
 * (mlx5_ib_pfault_handler in interrupt context, queueing the QP's work unless page faults are
 * disabled).
 */
import { spend } from '../../../../cost/charge.ts';
import { delay, join } from '../../../../kernel/context.ts';
import { kernel } from '../../../../kernel/kernel.ts';
import { SpinLock } from '../../../../kernel/sync/spinlock.ts';
import { WaitQueue } from '../../../../kernel/sync/wait-queue.ts';
import type { Co, Task } from '../../../../kernel/task.ts';
import { Work } from '../../../../kernel/workqueue.ts';
import { Errno } from '../../../../lib/errors.ts';
import { PAGE_SIZE } from '../../../../mm/constants.ts';
import type { IbPd, IbQpAttr, IbQpInitAttr, IbRecvWr, IbSendWr } from '../../core/objects.ts';
import {
  flushQueues,
  queueRecv,
  queueSend,
  RcQp,
  type RecvWqe,
  type SendWqe,
} from '../../core/rc-queues.ts';
import { requesterEngine } from './hca-requester.ts';
import type { Mlx5Device } from './main.ts';
import { mlx5IbMrPfaultHandler } from './odp.ts';

/** struct mlx5_pagefault: what the page-fault EQE said. */
export interface Mlx5Pagefault {
  /** MLX5_PFAULT_SUBTYPE_WQE (a WQE's buffers) or _RDMA (a remote access to an rkey). */
  readonly subtype: 'wqe' | 'rdma';
  /** MLX5_PFAULT_REQUESTOR: the send side of the QP, else the responder side. */
  readonly requester: boolean;
  /** bytes_committed: what the hardware already finished of the WQE or operation. */
  bytesCommitted: number;
  /** WQE faults: the WQE (the driver reads it from the queue buffer). */
  readonly wqe?: SendWqe | RecvWqe;
  /** RDMA faults: the key, address and remaining length of the operation, and the packet. */
  readonly rkey?: number;
  readonly va?: number;
  readonly opLen?: number;
  readonly packetSize?: number;
}

/** One of a QP's two page-fault contexts (requester, responder): the hardware's side and the work. */
export class PfChannel {
  /** A fault is outstanding: this side of the QP is stopped until PAGE_FAULT_RESUME. */
  suspended = false;
  /** The outstanding fault's EQE. */
  pfault: Mlx5Pagefault | null = null;
  /** The last resume reported an error (what the stopped side does next depends on it). */
  error = false;
  /** qp->pagefaults[context].work. */
  readonly work: Work;

  constructor(name: string, fn: () => Co) {
    this.work = new Work(name, fn);
  }
}

/** struct mlx5_ib_qp with the modelled HCA's queue state. */
export class Mlx5Qp extends RcQp {
  readonly dev: Mlx5Device;
  /** The send-queue engine while it runs. */
  engine: Task | null = null;
  readonly reqPf: PfChannel;
  readonly respPf: PfChannel;
  /** qp->disable_page_faults and its lock: no fault work is queued while set. */
  disablePageFaults = true;
  readonly disablePageFaultsLock: SpinLock;
  /** Where the send-queue engine waits for a resume or a state change. */
  readonly sqWake: WaitQueue;
  /**
   * Responder events (a resume, a posted receive, a state change), counted and announced:
   * a peer waiting out an RNR or ACK timer under an exploring strategy retries at the next
   * one instead of only when nothing else can run.
   */
  respEpoch = 0;
  readonly respEvents: WaitQueue;

  constructor(dev: Mlx5Device, qpn: number, pd: IbPd, attr: IbQpInitAttr) {
    super(qpn, pd, attr);
    this.dev = dev;
    const name = `${dev.name}:qp${qpn}`;
    this.reqPf = new PfChannel(`${name}.pf-req`, () => mlx5IbMrPfaultHandler(this, this.reqPf));
    this.respPf = new PfChannel(`${name}.pf-resp`, () => mlx5IbMrPfaultHandler(this, this.respPf));
    this.disablePageFaultsLock = new SpinLock(
      `${name}.disable_page_faults_lock`,
      'disable_page_faults_lock',
    );
    this.sqWake = new WaitQueue(`${name}.sq`);
    this.respEvents = new WaitQueue(`${name}.resp`);
  }

  get devName(): string {
    return this.dev.name;
  }

  /** Announces a responder event (see {@link respEpoch}). */
  responderEvent(): void {
    this.respEpoch++;
    this.respEvents.wakeUpAll();
  }

  override toString(): string {
    return `${this.dev.name}:qp${this.qpn}`;
  }
}

/** mlx5_ib_create_qp(): a QP in RESET with page faults disabled. */
export function* mlx5CreateQp(dev: Mlx5Device, pd: IbPd, attr: IbQpInitAttr): Co<Mlx5Qp> {
  yield* delay(0);
  const qp = new Mlx5Qp(dev, dev.allocQpn(), pd, attr);
  dev.qpTable.set(qp.qpn, qp);
  return qp;
}

/** mlx5_ib_qp_enable_pagefaults(). */
function* enablePageFaults(qp: Mlx5Qp): Co {
  yield* qp.disablePageFaultsLock.lock();
  qp.disablePageFaults = false;
  qp.disablePageFaultsLock.unlock();
}

/**
 * mlx5_ib_qp_disable_pagefaults(): no more fault work is queued for the QP, and the work
 * already queued has finished when this returns (flush_workqueue).
 */
function* disablePageFaults(qp: Mlx5Qp): Co {
  yield* qp.disablePageFaultsLock.lock();
  qp.disablePageFaults = true;
  qp.disablePageFaultsLock.unlock();
  yield* qp.dev.pfWq.flush();
}

/** mlx5_ib_modify_qp(): the core checked the transition; page faults follow the state. */
export function* mlx5ModifyQp(qp: Mlx5Qp, attr: IbQpAttr): Co {
  const next = attr.state;
  if (attr.dest !== undefined && !(attr.dest instanceof Mlx5Qp))
    throw new Errno('EINVAL', `${qp}: the peer must be a QP of an mlx5-like device`);
  if (qp.state === 'RESET' && next === 'INIT') yield* enablePageFaults(qp);
  if (next === 'RESET' || next === 'ERR') yield* disablePageFaults(qp);
  if (attr.dest !== undefined) qp.dest = attr.dest;
  if (attr.minRnrTimer !== undefined) qp.minRnrTimer = attr.minRnrTimer;
  if (attr.timeout !== undefined) qp.timeout = attr.timeout;
  if (attr.retryCnt !== undefined) qp.retryCnt = attr.retryCnt;
  if (attr.rnrRetry !== undefined) qp.rnrRetry = attr.rnrRetry;
  if (next === 'ERR') qpError(qp);
  else qp.state = next;
  if (next === 'RESET') resetQueues(qp);
  qp.sqWake.wakeUpAll();
  qp.responderEvent();
}

/** mlx5_ib_destroy_qp(): faults off and flushed, the QP leaves the table; its engine stops. */
export function* mlx5DestroyQp(qp: Mlx5Qp): Co {
  yield* disablePageFaults(qp);
  qp.dev.qpTable.delete(qp.qpn);
  qp.destroyed = true;
  qp.sqWake.wakeUpAll();
  qp.responderEvent();
  const engine = qp.engine;
  if (engine !== null) yield* join(engine);
}

/** The hardware moves the QP to the error state: every queued WQE completes flushed. */
export function qpError(qp: Mlx5Qp): void {
  flushQueues(qp);
  qp.sqWake.wakeUpAll();
}

/** RESET: queues emptied without completions, page-fault contexts cleared. */
function resetQueues(qp: Mlx5Qp): void {
  qp.sq.length = 0;
  qp.rq.length = 0;
  qp.recvOffset = 0;
  for (const ch of [qp.reqPf, qp.respPf]) {
    ch.suspended = false;
    ch.pfault = null;
    ch.error = false;
  }
}

/**
 * ->post_send() (mlx5_ib_post_send / the provider's doorbell): queues the WQE and starts the
 * send-queue engine. ENOMEM when the queue is full; EINVAL in a state that sends nothing.
 */
export function mlx5PostSend(qp: Mlx5Qp, wr: IbSendWr): void {
  queueSend(qp, wr);
  if (qp.engine === null) {
    qp.engine = kernel().spawn(`${qp}.sq`, function* () {
      try {
        yield* requesterEngine(qp);
      } finally {
        qp.engine = null;
      }
    });
  }
}

/** ->post_recv(): queues a receive WQE (flushed at once in the error state). */
export function mlx5PostRecv(qp: Mlx5Qp, wr: IbRecvWr): void {
  queueRecv(qp, wr);
}

/** The pages a fault event covers: the rest of the WQE or of the remote operation. */
function faultPages(pfault: Mlx5Pagefault): number {
  const bytes =
    pfault.subtype === 'wqe'
      ? pfault.wqe!.total - pfault.bytesCommitted
      : pfault.opLen! - pfault.bytesCommitted || pfault.packetSize!;
  return Math.max(1, Math.ceil(bytes / PAGE_SIZE));
}

/**
 * The hardware stops one side of the QP on a translation fault and posts a page-fault EQE;
 * the interrupt handler (mlx5_ib_pfault_handler) queues the side's work unless page faults are
 * disabled, in which case the fault is dropped and the side stays stopped.
 */
export function raisePagefault(qp: Mlx5Qp, ch: PfChannel, pfault: Mlx5Pagefault): void {
  ch.suspended = true;
  ch.pfault = pfault;
  ch.error = false;
  const k = kernel();
  if (k.trace.on)
    k.trace.emit('rdma-pagefault', {
      dev: qp.dev.name,
      qp: qp.qpn,
      subtype: pfault.subtype,
      requester: pfault.requester,
    });
  k.spawn(`irq/${qp.dev.name}-pf`, function* () {
    yield* spend('mlx5.pf.trigger', faultPages(pfault));
    yield* qp.disablePageFaultsLock.lock();
    if (!qp.disablePageFaults) qp.dev.pfWq.queueWork(ch.work);
    qp.disablePageFaultsLock.unlock();
  });
}
