// A minimal KVM-style mirror client (mmu-notifier.md §4): a classic notifier with an
// in-progress count raised at start and a sequence bumped at end; the fault samples the
// sequence, walks the CPU page table, and commits under its lock only if no invalidation is
// in progress and the sequence did not move. `ignoreInProgress` is the historical mutant.
import { type Co, isErrno, type Kernel, SpinLock } from '../../src/index.ts';
import { PAGE_SIZE } from '../../src/mm/constants.ts';
import { mmput } from '../../src/mm/exit.ts';
import { handleMmFault } from '../../src/mm/fault.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmgetNotZero } from '../../src/mm/mm-refs.ts';
import { mmuNotifierRegister, mmuNotifierUnregister } from '../../src/mm/mmu-notifier-register.ts';
import { MmuNotifier } from '../../src/mm/mmu-notifier-types.ts';
import { ptePresent } from '../../src/mm/pte.ts';
import { SecondaryMmu, snapshotPte } from '../../src/mm/secondary-mmu.ts';

export class KvmMirror {
  readonly mm: Mm;
  readonly smmu = new SecondaryMmu('kvm');
  readonly mmuLock = new SpinLock('kvm.mmu_lock');
  seq = 0;
  inProgress = 0;
  readonly notifier: MmuNotifier;
  private readonly ignoreInProgress: boolean;

  constructor(k: Kernel, mm: Mm) {
    this.mm = mm;
    this.ignoreInProgress = k.mutant('kvm.retry-ignores-in-progress');
    const self = this;
    this.notifier = new MmuNotifier({
      *invalidateRangeStart(_sub, range) {
        yield* self.mmuLock.lock();
        self.inProgress++;
        self.smmu.unmapRange(range.mm, range.start, range.end);
        self.mmuLock.unlock();
        return 0;
      },
      *invalidateRangeEnd() {
        yield* self.mmuLock.lock();
        self.seq++;
        self.inProgress--;
        self.mmuLock.unlock();
      },
      *release(_sub, mm) {
        yield* self.mmuLock.lock();
        self.smmu.unmapAll(mm);
        self.mmuLock.unlock();
      },
    });
  }

  *register(): Co {
    yield* mmuNotifierRegister(this.notifier, this.mm);
  }

  *unregister(): Co {
    yield* mmuNotifierUnregister(this.notifier, this.mm);
  }

  /** The guest touches `addr`: through the SPTE if there is one, else a fault. False when the address is gone. */
  *touch(addr: number, write: boolean): Co<boolean> {
    for (let i = 0; i < 8; i++) {
      yield;
      const t = this.smmu.lookup(this.mm, addr);
      if (t !== undefined && (!write || t.writable)) {
        this.smmu.access(this.mm, addr, write);
        return true;
      }
      // The vCPU runs in the process: no address space, no fault (mmget_not_zero).
      if (!mmgetNotZero(this.mm)) return false;
      const ok = yield* this.fault(addr, write);
      yield* mmput(this.mm);
      if (!ok) return false;
    }
    return false;
  }

  /** kvm_faultin_pfn + the mmu_invalidate_retry check + SPTE install. */
  *fault(addr: number, write: boolean): Co<boolean> {
    const mm = this.mm;
    for (let tries = 0; tries < 50; tries++) {
      const mmuSeq = this.seq;
      yield;
      yield* mm.mmapLock.downRead();
      let snap: ReturnType<typeof snapshotPte> | null = null;
      try {
        const vma = mm.findVma(addr);
        if (vma === undefined || (write && !vma.writable)) return false;
        let pte = mm.pte(addr);
        if (!ptePresent(pte) || !pte.readable || (write && !pte.writable)) {
          yield* handleMmFault(mm, addr, write);
          pte = mm.pte(addr);
        }
        if (ptePresent(pte)) snap = snapshotPte(pte);
      } catch (e) {
        if (isErrno(e)) return false;
        throw e;
      } finally {
        mm.mmapLock.upRead();
      }
      if (snap === null) continue;
      yield* this.mmuLock.lock();
      const retry = (!this.ignoreInProgress && this.inProgress !== 0) || this.seq !== mmuSeq;
      if (!retry)
        this.smmu.map(mm, addr - (addr % PAGE_SIZE), { ...snap, writable: snap.writable && write });
      this.mmuLock.unlock();
      if (!retry) return true;
    }
    return false;
  }
}
