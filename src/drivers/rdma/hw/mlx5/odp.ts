/**
 * On-demand paging in the mlx5-like driver (drivers/infiniband/hw/mlx5/odp.c): the 2014 design's
 * mlx5_ib_invalidate_range and pagefault_single_data_segment (3.19–4.19), and what both designs
 * share: pagefault_data_segments, the WQE and RDMA-responder fault handlers
 * (mlx5_ib_mr_wqe_pfault_handler, mlx5_ib_mr_rdma_pfault_handler) dispatched by
 * mlx5_ib_mr_pfault_handler, and mlx5_ib_page_fault_resume. The current design's own paths are
 * in odp-current.ts.
 */
import { charge, spend } from '../../../../cost/charge.ts';
import { preempt } from '../../../../kernel/context.ts';
import { kernel } from '../../../../kernel/kernel.ts';
import type { Co } from '../../../../kernel/task.ts';
import { Errno, isErrno } from '../../../../lib/errors.ts';
import { PAGE_SIZE } from '../../../../mm/constants.ts';
import { IB_ODP_SUPPORT_RECV, ODP_OPCODE_CAP } from '../../core/ib-verbs.ts';
import type { IbSge } from '../../core/objects.ts';
import type { SendWqe } from '../../core/rc-queues.ts';
import {
  ibUmemOdpMapDmaPages2014,
  ibUmemOdpUnmapDmaPages2014,
  type UmemOdp2014,
  umemMmuNotifierRetry,
} from '../../core/umem-odp-2014.ts';
import { odpFaultEvent } from '../../events.ts';
import type { Mlx5Device } from './main.ts';
import { type Mlx5Mr, mlx5OdpFindMrLkey } from './mr.ts';
import { pagefaultSingleDataSegmentCurrent } from './odp-current.ts';
import type { Mlx5Pagefault, Mlx5Qp, PfChannel } from './qp.ts';
import { mlx5UpdateMtt, mlx5ZapMapped } from './umr.ts';

/** MMU_NOTIFIER_TIMEOUT: how long a fault that lost a race waits for the invalidation, ns. */
export const MMU_NOTIFIER_TIMEOUT_NS = 1_000_000_000;

/**
 * mlx5_ib_invalidate_range(): the ucontext's invalidate_range hook. Zaps the MTT entries of
 * [start, end) that hold a translation, under umem_mutex (the umem's count keeps faults from
 * rewriting them meanwhile), then unmaps the pages. The device no longer reaches them when it
 * returns. A umem whose MR is not set up yet (`private` unset) has nothing to zap.
 */
export function* mlx5InvalidateRange(
  dev: Mlx5Device,
  umem: UmemOdp2014,
  start: number,
  end: number,
): Co {
  const mr = umem.privateMr as Mlx5Mr | null;
  if (mr === null) return;
  const lo = Math.max(umem.start, start);
  const hi = Math.min(umem.end, end);
  if (lo >= hi) return;
  // Mutant O3: the 2014 code zapped without umem_mutex ("concurrent invalidations write
  // zeros too"), so two invalidations of one MR post overlapping UMRs (fixed in v5.3).
  const serialise = !kernel().mutant('mlx5.unserialized-zap');
  if (serialise) yield* umem.umemMutex.lock();
  try {
    const zapped = yield* mlx5ZapMapped(mr, lo, hi);
    dev.stats.page_invalidations += zapped;
    if (zapped > 0) charge('mlx5.invalidate', zapped);
  } finally {
    if (serialise) umem.umemMutex.unlock();
  }
  yield* ibUmemOdpUnmapDmaPages2014(umem, lo, hi);
}

/** The ODP_READ/WRITE_ALLOWED mask a fault builds up. */
interface AccessMask {
  read: boolean;
  write: boolean;
}

/** What one data segment's fault mapped. */
interface SegmentResult {
  /** Pages processed (mapped, or already mapped). */
  readonly npages: number;
  /** Bytes of the segment (after the committed ones) the device can now reach. */
  readonly bytesMapped: number;
}

/**
 * pagefault_single_data_segment(): in an mr_srcu read section, the live MR behind `key`
 * (EFAULT when gone, or of another PD); a pinned MR counts as mapped. For ODP the sequence is
 * sampled before the pages are faulted in (with WRITE when the MR is writable), and the MTT
 * written only if no invalidation raced, under umem_mutex. On such a race the handler waits up
 * to a second for the invalidation to end and reports EAGAIN, or EFAULT for a dying umem.
 */
export function* pagefaultSingleDataSegment(
  dev: Mlx5Device,
  qp: Mlx5Qp,
  key: number,
  ioVirt: number,
  bcnt: number,
  bytesCommitted: number,
  access: AccessMask,
): Co<SegmentResult> {
  const srcu = dev.mrSrcu.readLock();
  let held: Mlx5Mr | null = null;
  try {
    const mr = mlx5OdpFindMrLkey(dev, key);
    if (mr === null) {
      dev.stats.num_mrs_not_found++;
      throw new Errno('EFAULT', `${dev.name}: no live MR for key 0x${key.toString(16)}`);
    }
    held = mr;
    mr.tracked.get();
    if (!mr.isOdp) return { npages: 0, bytesMapped: bcnt - bytesCommitted };
    if (mr.pd !== qp.pd)
      throw new Errno('EFAULT', `${dev.name}: page fault of ${qp} on an MR of another PD`);
    const umem = mr.odp as UmemOdp2014;
    const virt = ioVirt + bytesCommitted;
    const len = bcnt - bytesCommitted;
    if (umem.writable) access.write = true;
    const k = kernel();
    odpFaultEvent(mr.tt.name, mr.mm.id, virt, len, access.write, umem.writable);
    const currentSeq = umem.notifiersSeq;
    // smp_rmb(): the sequence is read before get_user_pages (another CPU may interleave here).
    yield* preempt();
    const startIdx = Math.floor((virt - umem.start) / PAGE_SIZE);
    let npages: number;
    try {
      npages = yield* ibUmemOdpMapDmaPages2014(umem, virt, len, access, currentSeq);
      if (npages > 0) yield* commitTranslations(mr, startIdx, npages, currentSeq);
    } catch (e) {
      if (!isErrno(e, 'EAGAIN')) throw e;
      dev.stats.fault_contentions++;
      if (k.trace.on)
        k.trace.emit('dev-retry', { dev: mr.tt.name, mm: mr.mm.id, start: virt, reason: 'EAGAIN' });
      if (umem.dying) throw new Errno('EFAULT', `${umem.name} is dying: the owner's mm is gone`);
      yield* umem.notifierCompletion.waitTimeout(MMU_NOTIFIER_TIMEOUT_NS);
      throw e;
    }
    dev.stats.page_faults += npages;
    const mappedBytes = npages * PAGE_SIZE - (virt % PAGE_SIZE);
    return { npages, bytesMapped: Math.min(mappedBytes, len) };
  } finally {
    held?.tracked.put();
    dev.mrSrcu.readUnlock(srcu);
  }
}

/** pagefault_single_data_segment() of the device's ODP design. */
function* faultSegment(
  dev: Mlx5Device,
  qp: Mlx5Qp,
  key: number,
  ioVirt: number,
  bcnt: number,
  bytesCommitted: number,
  access: AccessMask,
): Co<SegmentResult> {
  const r =
    dev.odpDesign !== 2020
      ? yield* pagefaultSingleDataSegment(dev, qp, key, ioVirt, bcnt, bytesCommitted, access)
      : yield* pagefaultSingleDataSegmentCurrent(
          dev,
          qp.pd,
          key,
          ioVirt,
          bcnt,
          bytesCommitted,
          false,
        );
  // The driver's own work on the pages (walk, DMA mapping); its UMR is charged apart.
  charge('mlx5.pf.driver', r.npages);
  return r;
}

/** Under umem_mutex: the MTT update, unless an invalidation moved the sequence (EAGAIN). */
function* commitTranslations(mr: Mlx5Mr, startIdx: number, npages: number, seq: number): Co {
  const umem = mr.odp as UmemOdp2014;
  yield* umem.umemMutex.lock();
  try {
    if (umemMmuNotifierRetry(umem, seq))
      throw new Errno('EAGAIN', `${umem.name}: an invalidation raced the fault`);
    yield* mlx5UpdateMtt(mr, startIdx, npages, false);
  } finally {
    umem.umemMutex.unlock();
  }
}

/** What pagefault_data_segments() found over a WQE's scatter/gather list. */
interface SegmentsResult {
  readonly bytesMapped: number;
  /** total_wqe_bytes: the WQE's bytes beyond the committed ones. */
  readonly totalWqeBytes: number;
}

/**
 * pagefault_data_segments(): faults each data segment of a WQE in turn, skipping the bytes the
 * hardware already committed; the first error ends the walk.
 */
function* pagefaultDataSegments(
  dev: Mlx5Device,
  qp: Mlx5Qp,
  pfault: Mlx5Pagefault,
  sgList: readonly IbSge[],
): Co<SegmentsResult> {
  let bytesMapped = 0;
  let totalWqeBytes = 0;
  const shared: AccessMask = { read: true, write: false };
  for (const sge of sgList) {
    totalWqeBytes += sge.length - Math.min(sge.length, pfault.bytesCommitted);
    if (sge.length <= pfault.bytesCommitted) {
      pfault.bytesCommitted -= sge.length;
      continue;
    }
    // Mutant O4: one access mask for every segment: a writable MR's WRITE bit carries over to
    // the next segment's MR (1abe186ed8a6 reset it per MR).
    const access = kernel().mutant('mlx5.shared-access-mask')
      ? shared
      : { read: true, write: false };
    const committed = pfault.bytesCommitted;
    pfault.bytesCommitted = 0;
    const r = yield* faultSegment(dev, qp, sge.lkey, sge.addr, sge.length, committed, access);
    bytesMapped += r.bytesMapped;
  }
  return { bytesMapped, totalWqeBytes };
}

/**
 * mlx5_ib_mr_wqe_pfault_handler(): reads the faulting WQE, faults all its segments, and
 * resumes — with an error when an opcode the device cannot fault on, an error, or fewer bytes
 * than the WQE needs; without one after EAGAIN (the hardware faults again).
 */
function* wqePfaultHandler(dev: Mlx5Device, qp: Mlx5Qp, ch: PfChannel, pfault: Mlx5Pagefault): Co {
  const wqe = pfault.wqe!;
  const caps = dev.odpCaps.perTransportCaps.rc;
  let error = true;
  try {
    const needed = 'psn' in wqe ? ODP_OPCODE_CAP[(wqe as SendWqe).wr.opcode] : IB_ODP_SUPPORT_RECV;
    if ((caps & needed) !== 0) {
      const r = yield* pagefaultDataSegments(dev, qp, pfault, wqe.wr.sgList);
      error = r.totalWqeBytes > r.bytesMapped;
    }
  } catch (e) {
    if (!isErrno(e)) throw e;
    error = !isErrno(e, 'EAGAIN');
  }
  yield* pageFaultResume(qp, ch, error);
}

/**
 * mlx5_ib_mr_rdma_pfault_handler(): a remote access to an rkey missed. Faults the rest of the
 * operation from the faulting packet, then resumes: with an error when it could not all be
 * mapped, without one after EAGAIN. (When the hardware cannot tell the operation's length it
 * reports 0 and the driver faults the packet, then prefetches after resuming.)
 */
function* rdmaPfaultHandler(dev: Mlx5Device, qp: Mlx5Qp, ch: PfChannel, pfault: Mlx5Pagefault): Co {
  const committed = pfault.bytesCommitted;
  const address = pfault.va! + committed;
  let length = pfault.opLen! - Math.min(committed, pfault.opLen!);
  const prefetch = length === 0;
  if (prefetch) length = pfault.packetSize!;
  let error: boolean;
  let raced = false;
  try {
    const r = yield* faultSegment(dev, qp, pfault.rkey!, address, length, 0, {
      read: true,
      write: false,
    });
    error = pagesInRange(address, length) > r.npages;
  } catch (e) {
    if (!isErrno(e)) throw e;
    raced = isErrno(e, 'EAGAIN');
    error = !raced;
  }
  yield* pageFaultResume(qp, ch, error);
  if (!prefetch || error || raced) return;
  try {
    yield* faultSegment(dev, qp, pfault.rkey!, address, Math.min(MAX_PREFETCH_LEN, committed), 0, {
      read: true,
      write: false,
    });
  } catch (e) {
    if (!isErrno(e)) throw e;
  }
}

/** MAX_PREFETCH_LEN: what the responder handler prefetches after an unknown-length fault. */
export const MAX_PREFETCH_LEN = 4 * 1024 * 1024;

function pagesInRange(address: number, length: number): number {
  const first = address - (address % PAGE_SIZE);
  return Math.ceil((address + length - first) / PAGE_SIZE);
}

/** mlx5_ib_mr_pfault_handler(): the work of one of a QP's page-fault contexts. */
export function* mlx5IbMrPfaultHandler(qp: Mlx5Qp, ch: PfChannel): Co {
  const pfault = ch.pfault;
  if (pfault === null) return;
  if (pfault.subtype === 'wqe') yield* wqePfaultHandler(qp.dev, qp, ch, pfault);
  else yield* rdmaPfaultHandler(qp.dev, qp, ch, pfault);
}

/**
 * mlx5_ib_page_fault_resume(): the firmware command letting the stopped side of the QP go on
 * (with an error, it fails the operation instead). Ignored for a QP that was reset or
 * destroyed meanwhile.
 */
function* pageFaultResume(qp: Mlx5Qp, ch: PfChannel, error: boolean): Co {
  yield* spend('mlx5.pf.resume');
  if (qp.destroyed || qp.state === 'RESET' || !ch.suspended) return;
  ch.suspended = false;
  ch.pfault = null;
  ch.error = error;
  const k = kernel();
  if (k.trace.on) k.trace.emit('rdma-resume', { dev: qp.dev.name, qp: qp.qpn, error });
  qp.sqWake.wakeUpAll();
  qp.responderEvent();
}
