/**
 * The verbs objects (struct ib_ucontext, ib_pd, ib_cq, ib_qp, ib_mr of include/rdma/ib_verbs.h)
 * and the work requests and completions that pass through them. Drivers extend the QP and MR
 * with their hardware state.
 */
import { SpinLock } from '../../../kernel/sync/spinlock.ts';
import { WaitQueue } from '../../../kernel/sync/wait-queue.ts';
import { Errno } from '../../../lib/errors.ts';
import type { Process } from '../../../mm/process.ts';
import type { IbDevice } from './device.ts';
import type { RdmaUserMmapEntry } from './ib-core-uverbs.ts';
import type { IbQpState, IbWcOpcode, IbWcStatus, IbWrOpcode } from './ib-verbs.ts';
import type { IbUmem } from './umem.ts';
import type { UmemOdp } from './umem-odp.ts';
import type { UcontextOdp2014, UmemOdp2014 } from './umem-odp-2014.ts';
import type { UverbsFile } from './uverbs.ts';

/** struct ib_ucontext: one per opened verbs file; the process that created it owns its ODP MRs. */
export class IbUcontext {
  readonly device: IbDevice;
  readonly ufile: UverbsFile;
  /** context->tgid: the creating process (ODP MRs may only be registered by it). */
  readonly tgid: Process;
  /** The 2014 design's per-context ODP state (tree, rwsem, notifier, counters). */
  readonly odp2014: UcontextOdp2014;
  readonly pds = new Set<IbPd>();
  readonly cqs = new Set<IbCq>();
  readonly qps = new Set<IbQp>();
  readonly mrs = new Set<IbMr>();
  /** Driver objects with mmap entries (device memory allocations), destroyed with the context. */
  readonly dms = new Set<IbDm>();
  /** mmap_xa (≥ 5.5): page offset → mmap entry, each entry at every offset it covers. */
  readonly mmapXa = new Map<number, RdmaUserMmapEntry>();
  /** The xarray's lock. */
  readonly mmapXaLock: SpinLock;
  /** Driver data (the UAR entry of an mlx5-like device). */
  driverData: unknown = null;

  constructor(device: IbDevice, ufile: UverbsFile, tgid: Process, odp: UcontextOdp2014) {
    this.device = device;
    this.ufile = ufile;
    this.tgid = tgid;
    this.odp2014 = odp;
    this.mmapXaLock = new SpinLock(`${ufile}.mmap_xa`, 'mmap_xa');
  }
}

/**
 * Device memory a process allocated (ibv_alloc_dm: mlx5 MEMIC): device frames it maps with
 * mmap() at `offset` of its verbs file.
 */
export class IbDm {
  readonly ucontext: IbUcontext;
  readonly pages: number;
  /** The mmap offset user space passes to mmap(). */
  readonly offset: number;
  readonly entry: RdmaUserMmapEntry;
  freed = false;

  constructor(ucontext: IbUcontext, pages: number, offset: number, entry: RdmaUserMmapEntry) {
    this.ucontext = ucontext;
    this.pages = pages;
    this.offset = offset;
    this.entry = entry;
  }
}

/** struct ib_pd. */
export class IbPd {
  readonly id: number;
  readonly ucontext: IbUcontext;
  /** Objects using the PD (QPs and MRs): deallocation is EBUSY while any exist. */
  usecnt = 0;
  dead = false;

  constructor(id: number, ucontext: IbUcontext) {
    this.id = id;
    this.ucontext = ucontext;
  }
}

/** struct ib_wc: one completion. */
export interface IbWc {
  readonly wrId: number;
  readonly status: IbWcStatus;
  readonly opcode: IbWcOpcode;
  /** Bytes transferred (a receive: the message length). */
  readonly byteLen: number;
  readonly qpNum: number;
}

/** struct ib_cq: completions in arrival order; pollers may sleep until one arrives. */
export class IbCq {
  readonly id: number;
  readonly ucontext: IbUcontext;
  /** Capacity (cqe); an overflow is a CQ error, reported as EOVERFLOW to the poller. */
  readonly cqe: number;
  readonly entries: IbWc[] = [];
  /** QPs using the CQ: destruction is EBUSY while any exist. */
  usecnt = 0;
  overflowed = false;
  dead = false;
  /** Where ibv_get_cq_event()-like waiters sleep. */
  readonly wq: WaitQueue;

  constructor(id: number, ucontext: IbUcontext, cqe: number) {
    this.id = id;
    this.ucontext = ucontext;
    this.cqe = cqe;
    this.wq = new WaitQueue(`cq${id}`);
  }

  /** The device adds a completion. */
  push(wc: IbWc): void {
    if (this.entries.length >= this.cqe) this.overflowed = true;
    else this.entries.push(wc);
    this.wq.wakeUpAll();
  }

  /** ibv_poll_cq(): up to `n` completions, oldest first. */
  poll(n: number): IbWc[] {
    if (this.overflowed)
      throw new Errno('EOVERFLOW', `cq${this.id} overflowed its ${this.cqe} entries`);
    return this.entries.splice(0, n);
  }
}

/** struct ib_sge: a scatter/gather element through an lkey. */
export interface IbSge {
  readonly addr: number;
  readonly length: number;
  readonly lkey: number;
}

/** struct ib_send_wr (with ib_rdma_wr / ib_atomic_wr folded in). */
export interface IbSendWr {
  readonly wrId: number;
  readonly opcode: IbWrOpcode;
  readonly sgList: readonly IbSge[];
  /** IB_SEND_SIGNALED: a successful completion is reported (errors always are). Default true. */
  readonly signaled?: boolean;
  /** RDMA and atomics: the remote address and key. */
  readonly remoteAddr?: number;
  readonly rkey?: number;
  /** Atomics: the add value, or the compare value of a compare-and-swap. */
  readonly compareAdd?: number;
  /** Compare-and-swap: the value stored when the compare matches. */
  readonly swap?: number;
}

/** struct ib_recv_wr. */
export interface IbRecvWr {
  readonly wrId: number;
  readonly sgList: readonly IbSge[];
}

/** What create_qp is given (struct ib_qp_init_attr, RC only). */
export interface IbQpInitAttr {
  readonly sendCq: IbCq;
  readonly recvCq: IbCq;
  /** max_send_wr / max_recv_wr. */
  readonly maxSendWr?: number;
  readonly maxRecvWr?: number;
  /** max_send_sge / max_recv_sge. */
  readonly maxSge?: number;
}

/** What modify_qp sets (struct ib_qp_attr, the fields RC uses). */
export interface IbQpAttr {
  readonly state: IbQpState;
  /** RTR: the connected peer (dest_qp_num and the address vector, as one reference). */
  readonly dest?: IbQp;
  /** RTR: min_rnr_timer, the RNR NAK delay this responder advertises (encoding 0–31). */
  readonly minRnrTimer?: number;
  /** RTS: the local ACK timeout (encoding 0–31), retry_cnt (0–7) and rnr_retry (0–7). */
  readonly timeout?: number;
  readonly retryCnt?: number;
  readonly rnrRetry?: number;
}

/** struct ib_qp: an RC queue pair; drivers keep its queues and engine state. */
export class IbQp {
  /** qp_num. */
  readonly qpn: number;
  readonly pd: IbPd;
  readonly sendCq: IbCq;
  readonly recvCq: IbCq;
  readonly maxSendWr: number;
  readonly maxRecvWr: number;
  readonly maxSge: number;
  state: IbQpState = 'RESET';
  dest: IbQp | null = null;
  minRnrTimer = 12;
  timeout = 14;
  retryCnt = 7;
  rnrRetry = 7;
  destroyed = false;

  constructor(qpn: number, pd: IbPd, attr: IbQpInitAttr) {
    this.qpn = qpn;
    this.pd = pd;
    this.sendCq = attr.sendCq;
    this.recvCq = attr.recvCq;
    this.maxSendWr = attr.maxSendWr ?? 128;
    this.maxRecvWr = attr.maxRecvWr ?? 128;
    this.maxSge = attr.maxSge ?? 4;
  }

  get device(): IbDevice {
    return this.pd.ucontext.device;
  }

  toString(): string {
    return `qp${this.qpn}`;
  }
}

/** struct ib_mr: a registered region with its keys, rights and umem. */
export class IbMr {
  readonly lkey: number;
  readonly rkey: number;
  readonly pd: IbPd;
  /** The IB_ACCESS_* flags it was registered with. */
  readonly access: number;
  /** The first address the keys translate (the user address: no zero-based MRs). */
  readonly iova: number;
  readonly length: number;
  readonly umem: IbUmem | UmemOdp2014 | UmemOdp;

  constructor(
    key: number,
    pd: IbPd,
    access: number,
    iova: number,
    length: number,
    umem: IbUmem | UmemOdp2014 | UmemOdp,
  ) {
    this.lkey = key;
    this.rkey = key;
    this.pd = pd;
    this.access = access;
    this.iova = iova;
    this.length = length;
    this.umem = umem;
  }

  /** True when `[addr, addr + len)` lies inside the MR. */
  covers(addr: number, len: number): boolean {
    return addr >= this.iova && len >= 0 && addr + len <= this.iova + this.length;
  }
}
