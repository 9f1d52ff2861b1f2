/**
 * struct ib_device: an RDMA device as the verbs core sees it: its name, the machine it sits in,
 * its ODP capabilities, and the driver operations (struct ib_device_ops) the core calls.
 */
import type { Co } from '../../../kernel/task.ts';
import type { Machine } from '../../../mm/machine.ts';
import type { Process } from '../../../mm/process.ts';
import type { Vma } from '../../../mm/vma.ts';
import type { RdmaUserMmapEntry } from './ib-core-uverbs.ts';
import type { IbOdpCaps } from './ib-verbs.ts';
import type {
  IbDm,
  IbMr,
  IbPd,
  IbQp,
  IbQpAttr,
  IbQpInitAttr,
  IbRecvWr,
  IbSendWr,
  IbSge,
  IbUcontext,
} from './objects.ts';
import type { UmemOdp2014 } from './umem-odp-2014.ts';
import { UverbsDevice } from './uverbs.ts';

/** The driver operations the verbs core calls (a subset of struct ib_device_ops). */
export interface IbDeviceOps {
  /** ->reg_user_mr(): `caller` is the process making the system call (`current`). */
  regUserMr(pd: IbPd, start: number, length: number, access: number, caller: Process): Co<IbMr>;
  /** ->dereg_mr(): the hardware no longer touches the MR when it returns. */
  deregMr(mr: IbMr): Co;
  /**
   * ->advise_mr(): prefetch of ODP MRs (ibv_advise_mr); absent on a device without it
   * (EOPNOTSUPP).
   */
  adviseMr?(pd: IbPd, advice: number, flags: number, sgList: readonly IbSge[]): Co;
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
  /** ->alloc_ucontext(): the driver's part of a new context (its doorbell entry). */
  allocUcontext?(ctx: IbUcontext): Co;
  /** ->dealloc_ucontext(). */
  deallocUcontext?(ctx: IbUcontext): Co;
  /** ->mmap(): maps device memory into `vma` (mmap_lock held for write). */
  mmap?(ctx: IbUcontext, vma: Vma): Co;
  /** ->mmap_free(): the last reference to an mmap entry is gone. Must not take umap_lock. */
  mmapFree?(entry: RdmaUserMmapEntry): void;
  /**
   * ->disassociate_ucontext(): present when the device supports hot unplug with open files
   * (the destroy flow disassociates them instead of waiting for every file to close).
   */
  disassociateUcontext?(ctx: IbUcontext): void;
  /** ->alloc_dm(): `pages` of device memory, mappable at the returned object's offset. */
  allocDm?(ctx: IbUcontext, pages: number): Co<IbDm>;
  /** ->dealloc_dm(). */
  deallocDm?(dm: IbDm): Co;
}

/**
 * The ODP core a kernel has (drivers/infiniband/core/umem_odp.c): 2014 (882214e2b128, 3.19 to
 * 4.19: per-context umem tree, notifier count, deferred activation), 2018 (ca748c39ea3f, 4.20
 * to 5.4: per-(context, mm) tree whose range_start holds umem_rwsem until range_end) or 2020
 * (5.10 and later: an mmu_interval_notifier per umem and hmm_range_fault).
 */
export type OdpDesign = 2014 | 2018 | 2020;

/** An RDMA device (struct ib_device). */
export abstract class IbDevice {
  readonly name: string;
  readonly machine: Machine;
  /** ibv_query_device_ex()'s odp_caps. */
  readonly odpCaps: IbOdpCaps;
  abstract readonly ops: IbDeviceOps;
  /** The ucontexts of every open file, for teardown and leak checks. */
  readonly ucontexts = new Set<IbUcontext>();
  /**
   * The kernel version whose uverbs mmap code the device runs, ×100 (612 for 6.12): 501, 505,
   * 506, 507 and 613 change how mappings are tracked and revoked (see the eras in
   * uverbs-mmap.ts). The default, 612, is the newest without the 6.13 disassociation_lock
   * inversion (docs/findings/disassociation-lock-inversion.md).
   */
  readonly era: number;
  /** Its uverbs character device. */
  readonly uverbs: UverbsDevice;
  /** Device frame ranges (BAR pages) the device owns, which go with it when it is unplugged. */
  readonly barPfns: [number, number][] = [];
  /** ib_unregister_device() completed. */
  unregistered = false;
  /** The ODP core of the kernel the device runs on. */
  readonly odpDesign: OdpDesign;
  /**
   * Applies the fix of the 2014 design's exit leak (set by the driver's options; default
   * false): the last ODP MR's release unregisters from the mm the context registered on,
   * as the per_mm design of 4.20 did, instead of looking up the owner's mm.
   */
  fixOdp2014Exit = false;
  private nextObjectId = 1;

  constructor(
    name: string,
    machine: Machine,
    odpCaps: IbOdpCaps,
    era = 612,
    odpDesign: OdpDesign = 2020,
  ) {
    this.name = name;
    this.machine = machine;
    this.odpCaps = odpCaps;
    this.era = era;
    this.odpDesign = odpDesign;
    this.uverbs = new UverbsDevice(this);
  }

  /** A fresh id for a PD or CQ (handles in user space). */
  objectId(): number {
    return this.nextObjectId++;
  }

  toString(): string {
    return this.name;
  }
}
