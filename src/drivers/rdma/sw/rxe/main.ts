/**
 * The software RDMA device (drivers/infiniband/sw/rxe: Soft-RoCE): an ib_device whose "hardware"
 * is kernel code. Its queue pairs run their requester and responder as work in process context
 * (qp.ts), reaching memory with the CPU through the MRs (mr.ts); ODP MRs fault synchronously
 * (odp.ts) instead of raising page-fault events, and a page that cannot be had is a NAK.
 */
import { SpinLock } from '../../../../kernel/sync/spinlock.ts';
import { Workqueue } from '../../../../kernel/workqueue.ts';
import type { Machine } from '../../../../mm/machine.ts';
import { IbDevice, type IbDeviceOps } from '../../core/device.ts';
import {
  IB_ODP_SUPPORT,
  IB_ODP_SUPPORT_ATOMIC,
  IB_ODP_SUPPORT_FLUSH,
  IB_ODP_SUPPORT_READ,
  IB_ODP_SUPPORT_RECV,
  IB_ODP_SUPPORT_SEND,
  IB_ODP_SUPPORT_SRQ_RECV,
  IB_ODP_SUPPORT_WRITE,
  type IbOdpCaps,
} from '../../core/ib-verbs.ts';
import { type RxeMr, rxeDeregMr, rxeRegUserMr } from './mr.ts';
import { rxeAdviseMr } from './prefetch.ts';
import {
  type RxeQp,
  rxeCreateQp,
  rxeDestroyQp,
  rxeModifyQp,
  rxePostRecv,
  rxePostSend,
} from './qp.ts';

/** IB_ODP_SUPPORT_ATOMIC_WRITE (ibv_odp_transport_cap_bits). */
const IB_ODP_SUPPORT_ATOMIC_WRITE = 1 << 7;

/**
 * rxe's odp_caps (6.14 and later): RC with every opcode, UD send and receive, and no implicit
 * ODP.
 */
export const RXE_ODP_CAPS: IbOdpCaps = {
  generalCaps: IB_ODP_SUPPORT,
  perTransportCaps: {
    rc:
      IB_ODP_SUPPORT_SEND |
      IB_ODP_SUPPORT_RECV |
      IB_ODP_SUPPORT_WRITE |
      IB_ODP_SUPPORT_READ |
      IB_ODP_SUPPORT_ATOMIC |
      IB_ODP_SUPPORT_SRQ_RECV |
      IB_ODP_SUPPORT_FLUSH |
      IB_ODP_SUPPORT_ATOMIC_WRITE,
    uc: 0,
    ud: IB_ODP_SUPPORT_SEND | IB_ODP_SUPPORT_RECV | IB_ODP_SUPPORT_SRQ_RECV,
    xrc: 0,
  },
};

/** struct rxe_dev. */
export class RxeDevice extends IbDevice {
  readonly ops: IbDeviceOps;
  /** The MR pool: index → MR. */
  readonly mrs = new Map<number, RxeMr>();
  readonly qps = new Map<number, RxeQp>();
  /** atomic_ops_lock: serialises every atomic the device executes. */
  readonly atomicOpsLock: SpinLock;
  /** The workqueue asynchronous prefetch runs on. */
  readonly prefetchWq: Workqueue;
  private nextIndex = 1;
  private nextQpn = 0x11;

  constructor(machine: Machine, options: { name?: string } = {}) {
    super(options.name ?? 'rxe0', machine, RXE_ODP_CAPS);
    this.atomicOpsLock = new SpinLock(`${this.name}.atomic_ops_lock`, 'atomic_ops_lock');
    this.prefetchWq = new Workqueue(`${this.name}_unbound`, 4);
    this.ops = {
      regUserMr: (pd, start, length, access, caller) =>
        rxeRegUserMr(this, pd, start, length, access, caller),
      deregMr: (mr) => rxeDeregMr(this, mr as RxeMr),
      createQp: (pd, attr) => rxeCreateQp(this, pd, attr),
      modifyQp: (qp, attr) => rxeModifyQp(qp as RxeQp, attr),
      destroyQp: (qp) => rxeDestroyQp(qp as RxeQp),
      postSend: (qp, wr) => rxePostSend(qp as RxeQp, wr),
      postRecv: (qp, wr) => rxePostRecv(qp as RxeQp, wr),
      adviseMr: (pd, advice, flags, sg) => rxeAdviseMr(this, pd, advice, flags, sg),
      disassociateUcontext: () => {},
    };
  }

  /** A fresh pool index for an MR. */
  allocIndex(): number {
    return this.nextIndex++;
  }

  /** A fresh QP number. */
  allocQpn(): number {
    return this.nextQpn++;
  }
}
