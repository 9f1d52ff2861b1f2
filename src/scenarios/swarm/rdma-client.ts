// The RDMA client of a `swarm` world: an ODP MR over a process's region (or an implicit MR
// over its whole address space), used through RDMA READ and WRITE by a peer process connected
// over RC, and prefetched with ibv_advise_mr.
import type { IbDevice } from '../../drivers/rdma/core/device.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_READ,
  IB_ACCESS_REMOTE_WRITE,
  IB_ODP_SUPPORT_IMPLICIT,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
  IB_UVERBS_ADVISE_MR_FLAG_FLUSH,
  SIZE_MAX,
} from '../../drivers/rdma/core/ib-verbs.ts';
import type { IbMr, IbSendWr } from '../../drivers/rdma/core/objects.ts';
import { ibUverbsClose } from '../../drivers/rdma/core/uverbs.ts';
import {
  ibAdviseMr,
  ibDeregMr,
  ibPostSend,
  ibQueryDeviceEx,
  ibRegMr,
  ibWaitCq,
} from '../../drivers/rdma/core/verbs.ts';
import { Mlx5Device } from '../../drivers/rdma/hw/mlx5/main.ts';
import { RxeDevice } from '../../drivers/rdma/sw/rxe/main.ts';
import type { Co } from '../../kernel/task.ts';
import { isErrno } from '../../lib/errors.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../mm/constants.ts';
import { cpuRead, cpuWrite } from '../../mm/cpu-access.ts';
import type { Machine } from '../../mm/machine.ts';
import type { Mm } from '../../mm/mm.ts';
import { mmap } from '../../mm/mmap.ts';
import { createProcess, exitMm, type Process } from '../../mm/process.ts';
import { type PageValues, pageOf } from '../page-values.ts';
import { connectedPair, type Endpoint, openEndpoint, type QpEnd } from '../rdma-kit.ts';
import type { RdmaKind } from './plan.ts';
import { isProcessGone, isRaceError, orNull, pageAddr, type SwarmProc } from './world.ts';

/** What the peer's read-only page holds (and so what a two-page WRITE puts in its second page). */
const PEER_RO_VALUE = 777;
/** The peer's writable on-demand page. */
const PEER_ODP_RW = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_ON_DEMAND;

/** Every right the peer uses, on demand. */
const ODP_RW =
  IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_READ | IB_ACCESS_REMOTE_WRITE | IB_ACCESS_ON_DEMAND;

/** The world's RDMA device of kind `kind`, with the fixes of the known findings or without. */
export function rdmaDevice(machine: Machine, kind: RdmaKind, fixed: boolean): IbDevice {
  if (kind === 'rxe') return new RxeDevice(machine, { name: 'rxe0' });
  const odpDesign = kind === 'mlx5-2014' ? 2014 : 2020;
  return new Mlx5Device(machine, {
    name: 'mlx5_0',
    odpDesign,
    fixRevokedInvalidate: fixed,
    fixOdp2014Exit: fixed,
  });
}

/** The peer process of an RDMA client: its buffers, its verbs file and its MRs. */
interface PeerSide {
  readonly peer: Process;
  readonly peerMm: Mm;
  /** Its buffer (pinned), then two pages on demand: one writable, one read-only. */
  readonly buf: number;
  readonly odpBuf: number;
  readonly roBuf: number;
  readonly peerEp: Endpoint;
  readonly peerMr: IbMr;
  readonly odpMr: IbMr;
  readonly roMr: IbMr;
}

/**
 * A peer process with its pages: a buffer, pinned, and two on demand, one writable and one
 * read-only that holds PEER_RO_VALUE (a WRITE gathers from both, so a WQE fault spans two MRs'
 * rights). Under the world's memory pressure a step may fail (ENOMEM): what was set up goes.
 */
function* openPeer(dev: IbDevice, machine: Machine): Co<PeerSide> {
  const peer = createProcess(machine);
  const peerMm = peer.mm!;
  let peerEp: Endpoint | null = null;
  try {
    const buf = yield* mmap(peerMm, {
      len: 3 * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    const odpBuf = buf + PAGE_SIZE;
    const roBuf = buf + 2 * PAGE_SIZE;
    yield* cpuWrite(peerMm, roBuf, pageOf(PEER_RO_VALUE));
    peerEp = yield* openEndpoint(dev, peer);
    const { pd } = peerEp;
    const peerMr = yield* ibRegMr(peer, pd, buf, PAGE_SIZE, IB_ACCESS_LOCAL_WRITE);
    const odpMr = yield* ibRegMr(peer, pd, odpBuf, PAGE_SIZE, PEER_ODP_RW);
    const roMr = yield* ibRegMr(peer, pd, roBuf, PAGE_SIZE, IB_ACCESS_ON_DEMAND);
    return { peer, peerMm, buf, odpBuf, roBuf, peerEp, peerMr, odpMr, roMr };
  } catch (e) {
    if (peerEp !== null) yield* ibUverbsClose(peerEp.file);
    yield* exitMm(peer);
    throw e;
  }
}

/** `fn()`, or null when it failed as a step may under the world's memory pressure. */
const unlessRace = <T>(fn: () => Co<T>): Co<T | null> => orNull(fn, isRaceError);

/** An open RDMA client: its MR, and the peer that reads and writes through it. */
export interface RdmaMirror {
  read(page: number): Co<Uint8Array | null>;
  write(page: number, bytes: Uint8Array): Co<boolean>;
  prefetch(page: number, count: number): Co;
  close(): Co;
}

/**
 * Registers the region (implicitly where the device can and `implicit` says so), and connects
 * a peer process (a pinned buffer, and two on-demand pages, one read-only) to the process.
 */
export function* openRdma(
  dev: IbDevice,
  proc: SwarmProc,
  implicit: boolean,
  values: PageValues,
): Co<RdmaMirror> {
  const ep = yield* openEndpoint(dev, proc.process);
  const canImplicit = (ibQueryDeviceEx(dev).odpCaps.generalCaps & IB_ODP_SUPPORT_IMPLICIT) !== 0;
  let mr: IbMr;
  try {
    mr =
      implicit && canImplicit
        ? yield* ibRegMr(proc.process, ep.pd, 0, SIZE_MAX, ODP_RW)
        : yield* ibRegMr(proc.process, ep.pd, proc.base, proc.pages * PAGE_SIZE, ODP_RW);
  } catch (e) {
    yield* ibUverbsClose(ep.file);
    throw e;
  }
  let side: PeerSide;
  try {
    side = yield* openPeer(dev, proc.process.machine);
  } catch (e) {
    yield* ibDeregMr(mr);
    yield* ibUverbsClose(ep.file);
    throw e;
  }
  const { peer, peerMm, buf, odpBuf, roBuf, peerEp, peerMr, odpMr, roMr } = side;
  let qp: QpEnd | null = null;
  // A failed work request leaves the QP in error: the next one connects a new pair.
  const post = function* (wr: IbSendWr): Co<boolean> {
    qp ??= (yield* connectedPair(peerEp, ep, { minRnrTimer: 1 }))[0];
    const end: QpEnd = qp;
    ibPostSend(end.qp, wr);
    const [wc] = yield* ibWaitCq(end.cq, 1);
    if (wc?.status === 'SUCCESS') return true;
    qp = null;
    return false;
  };
  const wr = (opcode: 'RDMA_READ' | 'RDMA_WRITE', page: number, rkey = mr.rkey): IbSendWr => ({
    wrId: 0,
    opcode,
    sgList: [{ addr: buf, length: PAGE_SIZE, lkey: peerMr.lkey }],
    remoteAddr: pageAddr(proc, page),
    rkey,
  });
  /** An RDMA READ of one page into the peer's buffer: its bytes, or null if it failed. */
  const readPage = function* (page: number, rkey = mr.rkey): Co<Uint8Array | null> {
    if (!(yield* post(wr('RDMA_READ', page, rkey)))) return null;
    return yield* unlessRace(() => cpuRead(peerMm, buf, PAGE_SIZE));
  };
  // Before ibv_advise_mr (5.0), applications registered an MR for one I/O, and prefetched by
  // registering the range and touching it: a second ODP MR of the context, registered while
  // invalidations may run (the 2014 design defers its activation then), used, deregistered.
  const throughNewMr = function* <T>(
    page: number,
    count: number,
    use: (rkey: number) => Co<T>,
  ): Co<T | null> {
    let tmp: IbMr;
    try {
      tmp = yield* ibRegMr(proc.process, ep.pd, pageAddr(proc, page), count * PAGE_SIZE, ODP_RW);
    } catch (e) {
      if (isProcessGone(proc, e)) return null;
      throw e;
    }
    try {
      return yield* use(tmp.rkey);
    } finally {
      yield* ibDeregMr(tmp);
    }
  };
  /** An RDMA WRITE of `bytes` to one page (two, gathered from the peer's on-demand MRs, but the last). */
  const writePage = function* (page: number, bytes: Uint8Array, rkey: number): Co<boolean> {
    // The peer's CPU writes its data first (under memory pressure it may fail: so does the I/O).
    if (page + 1 >= proc.pages) {
      if ((yield* unlessRace(() => cpuWrite(peerMm, buf, bytes))) === null) return false;
      return yield* post(wr('RDMA_WRITE', page, rkey));
    }
    // This page from the writable one, the next from the read-only one.
    values.allow(proc.first + page + 1, PEER_RO_VALUE);
    if ((yield* unlessRace(() => cpuWrite(peerMm, odpBuf, bytes))) === null) return false;
    return yield* post({
      wrId: 0,
      opcode: 'RDMA_WRITE',
      sgList: [
        { addr: odpBuf, length: PAGE_SIZE, lkey: odpMr.lkey },
        { addr: roBuf, length: PAGE_SIZE, lkey: roMr.lkey },
      ],
      remoteAddr: pageAddr(proc, page),
      rkey,
    });
  };
  // Where that was the practice, every I/O goes through an MR of its own.
  const oneIoMrs = dev.ops.adviseMr === undefined;
  return {
    *read(page) {
      if (!oneIoMrs) return yield* readPage(page);
      return yield* throughNewMr(page, 1, (rkey) => readPage(page, rkey));
    },
    *write(page, bytes) {
      if (!oneIoMrs) return yield* writePage(page, bytes, mr.rkey);
      const span = page + 1 >= proc.pages ? 1 : 2;
      return (yield* throughNewMr(page, span, (rkey) => writePage(page, bytes, rkey))) ?? false;
    },
    *prefetch(page, count) {
      if (oneIoMrs) {
        yield* throughNewMr(page, count, function* (rkey) {
          for (let i = 0; i < count; i++) {
            const bytes = yield* readPage(page + i, rkey);
            if (bytes !== null)
              values.check(`p${proc.index}'s rdma prefetch read`, proc.first + page + i, bytes, 0);
          }
        });
        return;
      }
      const sge = { addr: pageAddr(proc, page), length: count * PAGE_SIZE, lkey: mr.lkey };
      try {
        yield* ibAdviseMr(
          ep.pd,
          IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
          page % 2 === 0 ? IB_UVERBS_ADVISE_MR_FLAG_FLUSH : 0,
          [sge],
        );
      } catch (e) {
        // EPERM: a write prefetch of a range mprotect made read-only (hmm_range_fault's answer).
        if (!isProcessGone(proc, e) && !isErrno(e, 'EPERM')) throw e;
      }
    },
    *close() {
      yield* ibDeregMr(mr);
      yield* ibUverbsClose(ep.file);
      yield* ibUverbsClose(peerEp.file);
      yield* exitMm(peer);
    },
  };
}
