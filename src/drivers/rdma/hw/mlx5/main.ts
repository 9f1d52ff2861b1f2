/**
 * The mlx5-like device (drivers/infiniband/hw/mlx5/main.c): its ODP capabilities
 * (mlx5_ib_internal_fill_odp_caps), the mkey table the hardware resolves keys in, the QP
 * table page-fault events are dispatched through, mr_srcu, the single-threaded page-fault
 * workqueue, its ODP counters, and the driver operations the verbs core calls.
 */
import { registerCounters } from '../../../../check/counters.ts';
import { Srcu } from '../../../../kernel/sync/srcu.ts';
import { Workqueue } from '../../../../kernel/workqueue.ts';
import type { Machine } from '../../../../mm/machine.ts';
import type { IbDeviceOps, OdpDesign } from '../../core/device.ts';
import { IbDevice } from '../../core/device.ts';
import '../../events.ts';
import {
  IB_ODP_SUPPORT,
  IB_ODP_SUPPORT_ATOMIC,
  IB_ODP_SUPPORT_IMPLICIT,
  IB_ODP_SUPPORT_READ,
  IB_ODP_SUPPORT_RECV,
  IB_ODP_SUPPORT_SEND,
  IB_ODP_SUPPORT_SRQ_RECV,
  IB_ODP_SUPPORT_WRITE,
  type IbOdpCaps,
} from '../../core/ib-verbs.ts';
import {
  mlx5AllocDm,
  mlx5AllocUcontext,
  mlx5DeallocDm,
  mlx5DeallocUcontext,
  mlx5Mmap,
  mlx5MmapFree,
} from './mmap.ts';
import { type Mlx5Mr, mlx5DeregMr, mlx5RegUserMr } from './mr.ts';
import { mlx5InvalidateRange } from './odp.ts';
import { mlx5IbAdviseMr } from './prefetch.ts';
import {
  type Mlx5Qp,
  mlx5CreateQp,
  mlx5DestroyQp,
  mlx5ModifyQp,
  mlx5PostRecv,
  mlx5PostSend,
} from './qp.ts';

const RC_CAPS =
  IB_ODP_SUPPORT_SEND |
  IB_ODP_SUPPORT_RECV |
  IB_ODP_SUPPORT_WRITE |
  IB_ODP_SUPPORT_READ |
  IB_ODP_SUPPORT_ATOMIC |
  IB_ODP_SUPPORT_SRQ_RECV;

/** What a ConnectX-4-class device reports: ODP on RC for every opcode, UD send (no implicit ODP in this design). */
export const MLX5_ODP_CAPS: IbOdpCaps = {
  generalCaps: IB_ODP_SUPPORT,
  perTransportCaps: {
    rc: RC_CAPS,
    uc: 0,
    ud: IB_ODP_SUPPORT_SEND | IB_ODP_SUPPORT_SRQ_RECV,
    xrc: RC_CAPS,
  },
};

/** The same with implicit ODP (the current design: IB_ODP_SUPPORT_IMPLICIT). */
export const MLX5_ODP_CAPS_IMPLICIT: IbOdpCaps = {
  ...MLX5_ODP_CAPS,
  generalCaps: IB_ODP_SUPPORT | IB_ODP_SUPPORT_IMPLICIT,
};

/** A device without on-demand paging (odp_caps all zero). */
export const NO_ODP_CAPS: IbOdpCaps = {
  generalCaps: 0,
  perTransportCaps: { rc: 0, uc: 0, ud: 0, xrc: 0 },
};

/**
 * The ODP counters, by the names mlx5 reports its ODP statistics with (rdma statistic, the
 * driver's odp_stats).
 */
export interface OdpStats {
  /** Pages faulted in for the device. */
  page_faults: number;
  /** MTT entries zapped by invalidations. */
  page_invalidations: number;
  /** Pages made device visible by prefetch (ibv_advise_mr). */
  page_prefetch: number;
  /** ibv_advise_mr prefetch requests. */
  prefetch: number;
  /** Faults that lost a race with an invalidation and went round again. */
  fault_contentions: number;
  /** Faults whose key resolved to no live MR (a wrong or stale key). */
  num_mrs_not_found: number;
}

/** An mlx5-like HCA. */
export class Mlx5Device extends IbDevice {
  readonly ops: IbDeviceOps;
  /** The mkey table (the core's mr radix tree): index → MR. */
  readonly mkeys = new Map<number, Mlx5Mr>();
  /** QPs by number (mlx5_core_res_hold()). */
  readonly qpTable = new Map<number, Mlx5Qp>();
  /** dev->mr_srcu: page faults look MRs up inside it; deregistration waits for them. */
  readonly mrSrcu: Srcu;
  /** mlx5_ib_page_fault: the single-threaded workqueue page faults are handled on. */
  readonly pfWq: Workqueue;
  readonly stats: OdpStats = {
    page_faults: 0,
    page_invalidations: 0,
    page_prefetch: 0,
    prefetch: 0,
    fault_contentions: 0,
    num_mrs_not_found: 0,
  };
  /** system_unbound_wq, as the asynchronous prefetch uses it. */
  readonly prefetchWq: Workqueue;
  /** odp_mkeys (current design): the ODP mkeys the fault handler may look up, by index. */
  readonly odpMkeys = new Map<number, Mlx5Mr>();
  /** The clock BAR page user space may map read-only (allocated on first mmap). */
  clockPfn: number | null = null;
  /** A reset is revoking the mappings: mmap answers EIO (mlx5ResetRevoke). */
  mmapRevoked = false;
  /**
   * Applies the fix docs/findings/odp-revoked-mr-stale-dma.md proposes: an invalidation of a
   * revoked ODP MR still unmaps the range's DMA pages (Linux skips them; default false).
   */
  readonly fixRevokedInvalidate: boolean;
  private nextMkey = 1;
  private nextQpn = 0x100;

  constructor(
    machine: Machine,
    options: {
      name?: string;
      odpCaps?: IbOdpCaps;
      era?: number;
      odpDesign?: OdpDesign;
      fixRevokedInvalidate?: boolean;
      /** See IbDevice.fixOdp2014Exit. */
      fixOdp2014Exit?: boolean;
    } = {},
  ) {
    const design = options.odpDesign ?? 2014;
    const caps = design === 2020 ? MLX5_ODP_CAPS_IMPLICIT : MLX5_ODP_CAPS;
    super(options.name ?? 'mlx5_0', machine, options.odpCaps ?? caps, options.era ?? 612, design);
    this.fixRevokedInvalidate = options.fixRevokedInvalidate ?? false;
    this.fixOdp2014Exit = options.fixOdp2014Exit ?? false;
    this.mrSrcu = new Srcu(`${this.name}.mr_srcu`);
    this.pfWq = new Workqueue(`${this.name}_page_fault`);
    this.prefetchWq = new Workqueue(`${this.name}_unbound`, 4);
    if ((this.odpCaps.generalCaps & IB_ODP_SUPPORT) !== 0)
      registerCounters(machine.kernel, this.name, () => ({ ...this.stats }));
    const odp = (this.odpCaps.generalCaps & IB_ODP_SUPPORT) !== 0;
    this.ops = {
      regUserMr: (pd, start, length, access, caller) =>
        mlx5RegUserMr(this, pd, start, length, access, caller),
      deregMr: (mr) => mlx5DeregMr(this, mr as Mlx5Mr),
      createQp: (pd, attr) => mlx5CreateQp(this, pd, attr),
      modifyQp: (qp, attr) => mlx5ModifyQp(qp as Mlx5Qp, attr),
      destroyQp: (qp) => mlx5DestroyQp(qp as Mlx5Qp),
      postSend: (qp, wr) => mlx5PostSend(qp as Mlx5Qp, wr),
      postRecv: (qp, wr) => mlx5PostRecv(qp as Mlx5Qp, wr),
      ...(odp ? { invalidateRange: (umem, s, e) => mlx5InvalidateRange(this, umem, s, e) } : {}),
      // The model prefetches on the current design only (advise_mr came in 5.0).
      ...(odp && this.odpDesign === 2020
        ? { adviseMr: (pd, advice, flags, sg) => mlx5IbAdviseMr(this, pd, advice, flags, sg) }
        : {}),
      allocUcontext: (ctx) => mlx5AllocUcontext(this, ctx),
      deallocUcontext: (ctx) => mlx5DeallocUcontext(ctx),
      mmap: (ctx, vma) => mlx5Mmap(this, ctx, vma),
      mmapFree: (entry) => mlx5MmapFree(entry),
      disassociateUcontext: () => {},
      allocDm: (ctx, pages) => mlx5AllocDm(this, ctx, pages),
      deallocDm: (dm) => mlx5DeallocDm(dm),
    };
  }

  /** A fresh mkey: 24-bit index and an 8-bit variant that changes at every reuse. */
  allocMkey(): { index: number; key: number } {
    const index = this.nextMkey++;
    return { index, key: ((index << 8) | (index & 0xff)) >>> 0 };
  }

  /** A fresh QP number. */
  allocQpn(): number {
    return this.nextQpn++;
  }
}

export type { OdpDesign } from '../../core/device.ts';
