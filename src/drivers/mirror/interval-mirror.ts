/**
 * The smallest correct interval-notifier client (Documentation/mm/hmm.rst, "Address space
 * mirroring implementation and API"): a device table of one mm range kept coherent with
 * read_begin → hmm_range_fault → driver lock → read_retry → program the device → unlock, and an
 * invalidate callback doing lock (a trylock when not blockable) → set_seq → zap → unlock.
 *
 * Its mutants are the client-side mistakes the notifier API was designed against:
 * N2 `mirror.valid-flag` (the hmm_mirror-era boolean set by a classic start/end pair instead
 * of a sequence), N3 `mirror.retry-outside-lock` (read_retry checked before taking the lock the
 * callback takes) and N6 `mirror.nonblock-sleeps` (a sleeping lock in a non-blockable callback).
 *
 * @module
 */
import type { Kernel } from '../../kernel/kernel.ts';
import { Mutex } from '../../kernel/sync/mutex.ts';
import { WaitQueue } from '../../kernel/sync/wait-queue.ts';
import type { Co } from '../../kernel/task.ts';
import { isErrno } from '../../lib/errors.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import { mmput } from '../../mm/exit.ts';
import {
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  hmmPfnFlags,
  hmmPfnToPfn,
  hmmRange,
  hmmRangeFault,
} from '../../mm/hmm.ts';
import type { Mm } from '../../mm/mm.ts';
import { mmgetNotZero } from '../../mm/mm-refs.ts';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierInsertLocked,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
} from '../../mm/mmu-interval-notifier.ts';
import { MmuIntervalNotifier } from '../../mm/mmu-interval-notifier-types.ts';
import { mmuNotifierRegister, mmuNotifierUnregister } from '../../mm/mmu-notifier-register.ts';
import { EAGAIN, MmuNotifier } from '../../mm/mmu-notifier-types.ts';
import { SecondaryMmu } from '../../mm/secondary-mmu.ts';

/** One device mirroring a range of one mm through an interval notifier. */
export class IntervalMirror {
  readonly smmu: SecondaryMmu;
  readonly lock: Mutex;
  readonly sub: MmuIntervalNotifier;
  /** N2: the hmm_mirror-era boolean, driven by a classic start/end pair. */
  valid = true;
  private readonly validWq = new WaitQueue('mirror.valid');
  private readonly classic: MmuNotifier;
  private readonly mutant: {
    validFlag: boolean;
    retryOutsideLock: boolean;
    nonblockSleeps: boolean;
  };

  constructor(
    k: Kernel,
    readonly mm: Mm,
    name: string,
  ) {
    this.smmu = new SecondaryMmu(name);
    this.lock = new Mutex(`${name}.lock`, 'mirror.lock');
    this.mutant = {
      validFlag: k.mutant('mirror.valid-flag'),
      retryOutsideLock: k.mutant('mirror.retry-outside-lock'),
      nonblockSleeps: k.mutant('mirror.nonblock-sleeps'),
    };
    const self = this;
    this.sub = new MmuIntervalNotifier({
      client: 'interval-mirror',
      *invalidate(sub, range, cur) {
        if (range.blockable || self.mutant.nonblockSleeps) yield* self.lock.lock();
        else if (!self.lock.tryLock()) return false;
        mmuIntervalSetSeq(sub, cur);
        self.smmu.unmapRange(range.mm, range.start, range.end);
        self.lock.unlock();
        return true;
      },
    });
    this.classic = new MmuNotifier({
      client: 'interval-mirror',
      *invalidateRangeStart(_s, range) {
        if (range.blockable) yield* self.lock.lock();
        else if (!self.lock.tryLock()) return EAGAIN;
        self.valid = false;
        self.smmu.unmapRange(range.mm, range.start, range.end);
        self.lock.unlock();
        return 0;
      },
      *invalidateRangeEnd() {
        self.valid = true;
        self.validWq.wakeUpAll();
      },
      *release(_s, mm) {
        yield* self.lock.lock();
        self.smmu.unmapAll(mm);
        self.lock.unlock();
      },
    });
  }

  /**
   * Subscribes to [start, start + len) (with N2, the whole mm through a classic notifier).
   * `locked`: under mmap_lock held for write, with mmu_interval_notifier_insert_locked(), as
   * amdkfd adds the notifier of an SVM range (svm_range_add_notifier_locked()).
   */
  *insert(start: number, len: number, locked = false): Co {
    if (this.mutant.validFlag) return yield* mmuNotifierRegister(this.classic, this.mm);
    if (!locked)
      return yield* mmuIntervalNotifierInsert(this.sub, this.mm, start, len, this.sub.ops);
    yield* this.mm.mmapLock.downWrite();
    try {
      yield* mmuIntervalNotifierInsertLocked(this.sub, this.mm, start, len, this.sub.ops);
    } finally {
      this.mm.mmapLock.upWrite();
    }
  }

  /**
   * Tears the device table down, then unsubscribes: the device no longer uses the range, so
   * no translation may outlive the notifier that keeps it coherent.
   */
  *remove(): Co {
    yield* this.lock.lock();
    this.smmu.unmapAll(this.mm);
    this.lock.unlock();
    if (this.mutant.validFlag) yield* mmuNotifierUnregister(this.classic, this.mm);
    else yield* mmuIntervalNotifierRemove(this.sub);
  }

  /** The device touches `addr`: through its table, or by faulting it in. False when it cannot. */
  *touch(addr: number, write: boolean): Co<boolean> {
    for (let i = 0; i < 4; i++) {
      yield;
      const t = this.smmu.lookup(this.mm, addr);
      if (t !== undefined && (!write || t.writable)) {
        this.smmu.access(this.mm, addr, write);
        return true;
      }
      if (!mmgetNotZero(this.mm)) return false;
      let ok = false;
      try {
        ok = yield* this.fault(addr, write);
      } finally {
        yield* mmput(this.mm);
      }
      if (!ok) return false;
    }
    return false;
  }

  /** One page through the §2.9 pattern. */
  *fault(addr: number, write: boolean): Co<boolean> {
    const mm = this.mm;
    const page = addr - (addr % PAGE_SIZE);
    for (let tries = 0; tries < 20; tries++) {
      let seq: number;
      if (this.mutant.validFlag) {
        yield* this.validWq.waitEvent(() => this.valid);
        // No interval subscription: hmm_range_fault's early retry check never fires.
        seq = this.sub.invalidateSeq;
      } else {
        seq = yield* mmuIntervalReadBegin(this.sub);
      }
      const range = hmmRange(this.sub, seq, page, page + PAGE_SIZE, { fault: true, write });
      yield* mm.mmapLock.downRead();
      try {
        yield* hmmRangeFault(mm, range);
      } catch (e) {
        if (isErrno(e, 'EBUSY')) continue;
        if (isErrno(e)) return false;
        throw e;
      } finally {
        mm.mmapLock.upRead();
      }
      const early = this.mutant.retryOutsideLock && mmuIntervalReadRetry(this.sub, seq);
      if (this.mutant.retryOutsideLock) yield;
      yield* this.lock.lock();
      const retry = this.mutant.validFlag
        ? !this.valid
        : this.mutant.retryOutsideLock
          ? early
          : mmuIntervalReadRetry(this.sub, seq);
      if (!retry) {
        const e = range.pfns[0]!;
        if (hmmPfnFlags(e) & HMM_PFN_VALID) {
          this.smmu.map(mm, page, {
            pfn: hmmPfnToPfn(e),
            gen: range.gens[0]!,
            writable: (hmmPfnFlags(e) & HMM_PFN_WRITE) !== 0,
          });
        }
      }
      this.lock.unlock();
      if (!retry) return true;
    }
    return false;
  }
}
