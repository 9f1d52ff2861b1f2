/**
 * Nouveau's shared virtual memory (drivers/gpu/drm/nouveau/nouveau_svm.c, 5.5 to today),
 * reduced to its two notifiers and the GPU fault path:
 *
 * - nouveau_svmm_init(): a classic notifier on the process's mm, with no invalidate_range_end;
 * - nouveau_svmm_invalidate_range_start(): -EAGAIN for every non-blockable range; otherwise it
 *   clears the GPU's translations of the range (PFNCLR) under `svmm->mutex`;
 * - nouveau_svm_fault() → nouveau_range_fault(): one GPU fault, served through a transient
 *   interval notifier over the faulting page, inserted for the fault and removed after it:
 *   read_begin → hmm_range_fault → `svmm->mutex` → read_retry → PFNMAP;
 * - nouveau_svm_range_invalidate(): the interval callback only moves the subscription's
 *   sequence under the mutex (a trylock when non-blockable); the GPU's translations are
 *   cleared by the classic notifier, which the core calls after the interval side;
 * - nouveau_svmm_fini(): the vmm is detached under the mutex, the classic notifier put;
 * - no ->release: exit_mmap() unlinks the classic notifier before it unmaps, so the GPU keeps
 *   its entries of the pages exit frees until the client closes (nouveau-exit-release.md).
 *
 * One mm thus carries both kinds of subscription, which is what exposes the core's
 * unbalanced interval side when the classic one refuses (docs/findings/itree-nonblock-leak.md).
 *
 * @module
 */

import { kernel } from '../../kernel/kernel.ts';
import { Mutex } from '../../kernel/sync/mutex.ts';
import type { Co } from '../../kernel/task.ts';
import { Errno, isErrno } from '../../lib/errors.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import { mmput } from '../../mm/exit.ts';
import {
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  hmmPfnFlags,
  hmmPfnToPfn,
  hmmRange,
  hmmRangeFault,
  HMM_RANGE_DEFAULT_TIMEOUT_NS as RANGE_TIMEOUT_NS,
} from '../../mm/hmm.ts';
import type { Mm } from '../../mm/mm.ts';
import { mmgetNotZero } from '../../mm/mm-refs.ts';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
} from '../../mm/mmu-interval-notifier.ts';
import {
  MmuIntervalNotifier,
  type MmuIntervalNotifierOps,
} from '../../mm/mmu-interval-notifier-types.ts';
import { mmuNotifierPut, mmuNotifierRegister } from '../../mm/mmu-notifier-register.ts';
import { EAGAIN, MmuNotifier, type MmuNotifierRange } from '../../mm/mmu-notifier-types.ts';
import { SecondaryMmu } from '../../mm/secondary-mmu.ts';

/** Device name in traces and oracle messages. */
export const NOUVEAU_DEVICE = 'nouveau';

/** One GPU SVM address space (struct nouveau_svmm) mirroring one process. */
export class NouveauSvmm {
  readonly mm: Mm;
  /** The GPU's translations of the process (its VMM's PFNMAP entries), watched by the oracles. */
  readonly gpu = new SecondaryMmu(NOUVEAU_DEVICE);
  /** svmm->mutex: serializes GPU page-table updates with the notifiers. */
  readonly mutex = new Mutex('svmm.mutex', 'nouveau.svmm.mutex');
  /** svmm->notifier: the classic subscription. */
  readonly notifier: MmuNotifier;
  /** svmm->vmm: null once nouveau_svmm_fini() detached it. */
  private attached = true;
  private readonly intervalOps: MmuIntervalNotifierOps;

  private constructor(mm: Mm, withRelease: boolean) {
    this.mm = mm;
    this.notifier = new MmuNotifier({
      client: 'nouveau',
      invalidateRangeStart: (_sub, range) => this.invalidateRangeStart(range),
      freeNotifier: () => {},
      // No kernel has it: the proposed fix of docs/findings/nouveau-exit-release.md.
      ...(withRelease ? { release: () => this.release() } : {}),
    });
    this.intervalOps = {
      client: 'nouveau',
      invalidate: (sub, range, cur) => this.rangeInvalidate(sub, range, cur),
    };
  }

  /**
   * nouveau_svmm_init(): the SVM ioctl of a DRM client, run by the process on its own mm.
   * `withRelease` adds a ->release clearing every GPU entry of the mm (the proposed fix; nouveau
   * has had no ->release since 5.5, and an empty one before).
   */
  static *init(mm: Mm, options: { withRelease?: boolean } = {}): Co<NouveauSvmm> {
    const svmm = new NouveauSvmm(mm, options.withRelease ?? false);
    yield* mmuNotifierRegister(svmm.notifier, mm);
    return svmm;
  }

  /** nouveau_svmm_fini(): the client closes; the GPU forgets the process. */
  *fini(): Co {
    yield* this.mutex.lock();
    this.attached = false;
    this.gpu.unmapAll(this.mm);
    this.mutex.unlock();
    yield* mmuNotifierPut(this.notifier);
  }

  /**
   * The GPU reads (or writes) the word at `addr`: through its translation when it has a usable
   * one, else after a replayable fault. False when the fault was cancelled (the address is not
   * mapped, the process is gone, or the fault failed).
   */
  *access(addr: number, write: boolean): Co<boolean> {
    const page = addr - (addr % PAGE_SIZE);
    yield;
    const t = this.gpu.lookup(this.mm, page);
    if (t === undefined || (write && !t.writable)) {
      if (!(yield* this.svmFault(page, write))) return false;
      yield;
    }
    const now = this.gpu.lookup(this.mm, page);
    if (now === undefined || (write && !now.writable)) {
      // The entry the fault wrote is gone: with the GPU still attached, only an invalidation
      // may have taken it.
      if (this.attached) this.retried(page, 'gave-up');
      return false;
    }
    this.gpu.access(this.mm, page, write);
    return true;
  }

  /**
   * nouveau_svm_fault() for one fault entry: the fault is cancelled when the process has no
   * users left (mmget_not_zero); otherwise nouveau_range_fault() serves it, holding mm_users.
   */
  private *svmFault(page: number, write: boolean): Co<boolean> {
    if (!this.attached || !mmgetNotZero(this.mm)) return false;
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('dev-fault', {
        dev: NOUVEAU_DEVICE,
        mm: this.mm.id,
        start: page,
        end: page + PAGE_SIZE,
        write,
      });
    try {
      return yield* this.rangeFault(page, write);
    } catch (e) {
      if (isErrno(e)) return false;
      throw e;
    } finally {
      yield* mmput(this.mm);
    }
  }

  /**
   * nouveau_range_fault(): a transient interval notifier over the faulting page; the
   * read_begin / hmm_range_fault / mutex / read_retry loop until the GPU entry is written
   * (EBUSY after HMM_RANGE_DEFAULT_TIMEOUT); the notifier is removed on every way out.
   */
  private *rangeFault(page: number, write: boolean): Co<boolean> {
    const k = kernel();
    const mm = this.mm;
    const sub = new MmuIntervalNotifier(this.intervalOps);
    yield* mmuIntervalNotifierInsert(sub, mm, page, PAGE_SIZE, this.intervalOps);
    try {
      const timeout = k.now + RANGE_TIMEOUT_NS;
      for (;;) {
        if (k.now > timeout) throw new Errno('EBUSY', `${NOUVEAU_DEVICE}: fault timed out`);
        const seq = yield* mmuIntervalReadBegin(sub);
        const range = hmmRange(sub, seq, page, page + PAGE_SIZE, { fault: true, write });
        yield* mm.mmapLock.downRead();
        try {
          yield* hmmRangeFault(mm, range);
        } catch (e) {
          if (!isErrno(e, 'EBUSY')) throw e;
          this.retried(page, 'EBUSY');
          continue;
        } finally {
          mm.mmapLock.upRead();
        }
        yield* this.mutex.lock();
        if (mmuIntervalReadRetry(sub, seq)) {
          this.mutex.unlock();
          this.retried(page, 'read_retry');
          continue;
        }
        const entry = range.pfns[0]!;
        const ok = this.attached && (hmmPfnFlags(entry) & HMM_PFN_VALID) !== 0;
        if (ok)
          this.gpu.map(mm, page, {
            pfn: hmmPfnToPfn(entry),
            gen: range.gens[0]!,
            writable: (hmmPfnFlags(entry) & HMM_PFN_WRITE) !== 0,
          });
        this.mutex.unlock();
        return ok;
      }
    } finally {
      yield* mmuIntervalNotifierRemove(sub);
    }
  }

  /** A fault retried or an access given up: the liveness oracle asks the cause of each. */
  private retried(page: number, reason: string): void {
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('dev-retry', { dev: NOUVEAU_DEVICE, mm: this.mm.id, start: page, reason });
  }

  /**
   * nouveau_svm_range_invalidate(): moves the transient subscription's sequence under the
   * mutex; refuses (false) a non-blockable range when the mutex is busy.
   */
  private *rangeInvalidate(
    sub: MmuIntervalNotifier,
    range: MmuNotifierRange,
    curSeq: number,
  ): Co<boolean> {
    if (range.blockable) yield* this.mutex.lock();
    else if (!this.mutex.tryLock()) return false;
    mmuIntervalSetSeq(sub, curSeq);
    this.mutex.unlock();
    return true;
  }

  /** The proposed ->release: at exit_mmap(), before any page is freed, the GPU forgets the mm. */
  private *release(): Co {
    yield* this.mutex.lock();
    this.gpu.unmapAll(this.mm);
    this.mutex.unlock();
  }

  /**
   * nouveau_svmm_invalidate_range_start(): every non-blockable range is refused with EAGAIN
   * (the reason the core's unwinding matters); otherwise the GPU's entries of the range are
   * cleared (nouveau_svmm_invalidate(), PFNCLR) under the mutex.
   */
  private *invalidateRangeStart(range: MmuNotifierRange): Co<number> {
    if (!range.blockable) return EAGAIN;
    yield* this.mutex.lock();
    if (this.attached) this.gpu.unmapRange(range.mm, range.start, range.end);
    this.mutex.unlock();
    return 0;
  }
}
