/**
 * struct ib_device: an RDMA device as the verbs core sees it: its name, the machine it sits in,
 * its ODP capabilities, and the driver operations (struct ib_device_ops) the core calls.
 */
import type { Co } from '../../../kernel/task.ts';
import type { Machine } from '../../../mm/machine.ts';
import type { Process } from '../../../mm/process.ts';
import type { IbOdpCaps } from './ib-verbs.ts';
import type {
  IbMr,
  IbPd,
  IbQp,
  IbQpAttr,
  IbQpInitAttr,
  IbRecvWr,
  IbSendWr,
  IbUcontext,
} from './objects.ts';
import type { UmemOdp2014 } from './umem-odp-2014.ts';

/** The driver operations the verbs core calls (a subset of struct ib_device_ops). */
export interface IbDeviceOps {
  /** ->reg_user_mr(): `caller` is the process making the system call (`current`). */
  regUserMr(pd: IbPd, start: number, length: number, access: number, caller: Process): Co<IbMr>;
  /** ->dereg_mr(): the hardware no longer touches the MR when it returns. */
  deregMr(mr: IbMr): Co;
  /** ->create_qp() (RC). */
  createQp(pd: IbPd, attr: IbQpInitAttr): Co<IbQp>;
  /** ->modify_qp(): the core has checked the transition. */
  modifyQp(qp: IbQp, attr: IbQpAttr): Co;
  /** ->destroy_qp(). */
  destroyQp(qp: IbQp): Co;
  /** ->post_send() from user space (a doorbell: no system call, never sleeps). */
  postSend(qp: IbQp, wr: IbSendWr): void;
  /** ->post_recv(). */
  postRecv(qp: IbQp, wr: IbRecvWr): void;
  /**
   * The 2014 design's `ib_ucontext->invalidate_range`: the driver's invalidation of an ODP
   * umem range; absent on a device without ODP.
   */
  invalidateRange?(umem: UmemOdp2014, start: number, end: number): Co;
}

/** An RDMA device (struct ib_device). */
export abstract class IbDevice {
  readonly name: string;
  readonly machine: Machine;
  /** ibv_query_device_ex()'s odp_caps. */
  readonly odpCaps: IbOdpCaps;
  abstract readonly ops: IbDeviceOps;
  /** The ucontexts of every open file, for teardown and leak checks. */
  readonly ucontexts = new Set<IbUcontext>();
  private nextObjectId = 1;

  constructor(name: string, machine: Machine, odpCaps: IbOdpCaps) {
    this.name = name;
    this.machine = machine;
    this.odpCaps = odpCaps;
  }

  /** A fresh id for a PD or CQ (handles in user space). */
  objectId(): number {
    return this.nextObjectId++;
  }

  toString(): string {
    return this.name;
  }
}
