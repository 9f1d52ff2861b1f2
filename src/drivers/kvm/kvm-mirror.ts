/**
 * A KVM-style secondary MMU (virt/kvm/kvm_main.c, arch/x86/kvm/mmu/mmu.c), reduced to the
 * protocol that keeps its shadow page table (SPTEs) coherent with the process page table:
 *
 * - a classic MMU notifier whose start raises `mmu_invalidate_in_progress` and zaps the SPTEs
 *   of the range under `kvm->mmu_lock`, and whose end bumps `mmu_invalidate_seq` and lowers the
 *   count;
 * - a fault path that samples the sequence, resolves the page through the CPU page table
 *   (faulting it in as get_user_pages would), then takes `kvm->mmu_lock` and installs the SPTE
 *   only if `mmu_invalidate_retry()` says no invalidation ran or is running.
 *
 * The mutant `kvm.retry-ignores-in-progress` drops the in-progress half of the retry check, the
 * bug class ODP's first design copied (882214e2b128): a fault that sampled the sequence during
 * an invalidation's start commits a translation of the page being torn down.
 *
 * @module
 */

import type { Kernel } from '../../kernel/kernel.ts';
import { SpinLock } from '../../kernel/sync/spinlock.ts';
import type { Co } from '../../kernel/task.ts';
import { isErrno } from '../../lib/errors.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import { mmput } from '../../mm/exit.ts';
import { handleMmFault } from '../../mm/fault.ts';
import type { Mm } from '../../mm/mm.ts';
import { mmgetNotZero } from '../../mm/mm-refs.ts';
import { mmuNotifierRegister, mmuNotifierUnregister } from '../../mm/mmu-notifier-register.ts';
import { MmuNotifier } from '../../mm/mmu-notifier-types.ts';
import type { PageData } from '../../mm/page-data.ts';
import { ptePresent } from '../../mm/pte.ts';
import { type DeviceTranslation, SecondaryMmu, snapshotPte } from '../../mm/secondary-mmu.ts';

/** Device name in traces and oracle messages. */
export const KVM_DEVICE = 'kvm';

/** Faults a guest access attempts before giving up (the guest would see the fault again). */
const TOUCH_TRIES = 8;
/** Retries of one fault against racing invalidations before it gives up. */
const FAULT_TRIES = 50;

/**
 * One VM mirroring one process address space (struct kvm with its TDP MMU), with the classic
 * notifier of kvm_init_mmu_notifier().
 */
export class KvmMirror {
  readonly mm: Mm;
  /** The shadow page table, reported to the coherence oracle. */
  readonly smmu = new SecondaryMmu(KVM_DEVICE);
  /** kvm->mmu_lock. */
  readonly mmuLock = new SpinLock('kvm.mmu_lock');
  /** kvm->mmu_invalidate_seq: bumped when an invalidation ends. */
  seq = 0;
  /** kvm->mmu_invalidate_in_progress: invalidations started and not yet ended. */
  inProgress = 0;
  /** kvm->mmu_notifier. */
  readonly notifier: MmuNotifier;
  private readonly ignoreInProgress: boolean;

  constructor(k: Kernel, mm: Mm) {
    this.mm = mm;
    this.ignoreInProgress = k.mutant('kvm.retry-ignores-in-progress');
    // With every task finished no invalidation runs: while the VM is registered, a count left
    // raised is a start never ended (an unregistration between a start and its end strands one,
    // which kvm_destroy_vm() knows and ignores).
    k.onQuiescence(() => {
      if (this.inProgress !== 0 && this.notifier.hashed)
        k.bug(
          'notifier-pairing',
          `${KVM_DEVICE}: mmu_invalidate_in_progress is ${this.inProgress} with every task finished: a start of mm${mm.id} was never ended`,
        );
    });
    const self = this;
    this.notifier = new MmuNotifier({
      client: 'kvm',
      /** kvm_mmu_notifier_invalidate_range_start(): count up, zap the range's SPTEs. */
      *invalidateRangeStart(_sub, range) {
        yield* self.mmuLock.lock();
        self.inProgress++;
        self.traceInvalidate('start');
        self.smmu.unmapRange(range.mm, range.start, range.end);
        self.mmuLock.unlock();
        return 0;
      },
      /** kvm_mmu_notifier_invalidate_range_end(): bump the sequence, count down. */
      *invalidateRangeEnd() {
        yield* self.mmuLock.lock();
        self.seq++;
        self.inProgress--;
        self.traceInvalidate('end');
        self.mmuLock.unlock();
      },
      /** kvm_mmu_notifier_release(): the process is exiting; drop every SPTE. */
      *release(_sub, mm) {
        yield* self.mmuLock.lock();
        self.smmu.unmapAll(mm);
        self.mmuLock.unlock();
      },
    });
  }

  /** kvm_init_mmu_notifier(): mmu_notifier_register() on the VM's mm. */
  *register(): Co {
    yield* mmuNotifierRegister(this.notifier, this.mm);
  }

  /** kvm_destroy_vm(): mmu_notifier_unregister(). */
  *unregister(): Co {
    yield* mmuNotifierUnregister(this.notifier, this.mm);
  }

  /**
   * mmu_invalidate_retry(): true when the fault that sampled `mmuSeq` must not install its
   * SPTE, because an invalidation is running or one ended since. Called under `mmu_lock`.
   * (This is the whole-VM form; newer kernels narrow the in-progress test to a gfn range.)
   */
  invalidateRetry(mmuSeq: number): boolean {
    if (!this.ignoreInProgress && this.inProgress !== 0) return true;
    return this.seq !== mmuSeq;
  }

  /**
   * A guest access to `addr` through the SPTE (a TDP walk), faulting it in when there is no
   * usable SPTE. `onData` runs on the frame's bytes in the same atomic step as the access.
   * False when the address is gone (no VMA, no permission, the process exited).
   */
  *access(addr: number, write: boolean, onData?: (data: PageData) => void): Co<boolean> {
    const page = addr - (addr % PAGE_SIZE);
    for (let i = 0; i < TOUCH_TRIES; i++) {
      yield;
      const t = this.smmu.lookup(this.mm, addr);
      if (t !== undefined && (!write || t.writable)) {
        this.smmu.access(this.mm, addr, write);
        onData?.(this.frameData(t));
        return true;
      }
      // The SPTE the last fault installed is gone: only an invalidation may have taken it.
      if (i > 0) this.retried(page, 'spte-gone');
      // The vCPU runs in the process: no address space, no fault (mmget_not_zero).
      if (!mmgetNotZero(this.mm)) return false;
      const ok = yield* this.fault(addr, write);
      yield* mmput(this.mm);
      if (!ok) return false;
    }
    this.retried(page, 'gave-up');
    return false;
  }

  /** A guest access that only touches the page (see {@link access}). */
  *touch(addr: number, write: boolean): Co<boolean> {
    return yield* this.access(addr, write);
  }

  /** The guest reads a little-endian 32-bit word; null when the address is gone. */
  *readU32(addr: number): Co<number | null> {
    const off = addr % PAGE_SIZE;
    let value: number | null = null;
    const ok = yield* this.access(addr, false, (data) => {
      const b = new Uint8Array(4);
      data.read(off, b, 0, 4);
      value = new DataView(b.buffer).getInt32(0, true);
    });
    return ok ? value : null;
  }

  /** The guest writes a little-endian 32-bit word; false when the address is gone. */
  *writeU32(addr: number, value: number): Co<boolean> {
    const off = addr % PAGE_SIZE;
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, value | 0, true);
    return yield* this.access(addr, true, (data) => data.write(off, b, 0, 4));
  }

  /**
   * kvm_tdp_page_fault(): sample `mmu_invalidate_seq`, resolve the page through the CPU page
   * table (kvm_faultin_pfn() → get_user_pages, which may fault it in), then under `mmu_lock`
   * install the SPTE unless {@link invalidateRetry} says to start over. False when the
   * address cannot be mapped (no VMA, no permission, out of memory) or retries ran out.
   */
  *fault(addr: number, write: boolean): Co<boolean> {
    const mm = this.mm;
    const page = addr - (addr % PAGE_SIZE);
    const k = mm.machine.kernel;
    if (k.trace.on)
      k.trace.emit('dev-fault', {
        dev: KVM_DEVICE,
        mm: mm.id,
        start: page,
        end: page + PAGE_SIZE,
        write,
      });
    for (let tries = 0; tries < FAULT_TRIES; tries++) {
      const mmuSeq = this.seq;
      if (k.trace.on)
        k.trace.emit('seq-begin', {
          mm: mm.id,
          owner: KVM_DEVICE,
          fn: 'mmu_invalidate_seq',
          seq: mmuSeq,
          waited: false,
        });
      yield;
      yield* mm.mmapLock.downRead();
      let snap: DeviceTranslation | null = null;
      try {
        const vma = mm.findVma(addr);
        if (vma === undefined || (write && !vma.writable)) return false;
        let pte = mm.pte(page);
        if (!ptePresent(pte) || !pte.readable || (write && !pte.writable)) {
          yield* handleMmFault(mm, addr, write);
          pte = mm.pte(page);
        }
        if (ptePresent(pte)) snap = snapshotPte(pte);
      } catch (e) {
        if (isErrno(e)) return false;
        throw e;
      } finally {
        mm.mmapLock.upRead();
      }
      if (snap === null) {
        this.retried(page, 'pte-gone');
        continue;
      }
      yield* this.mmuLock.lock();
      const retry = this.invalidateRetry(mmuSeq);
      if (k.trace.on)
        k.trace.emit('seq-check', {
          mm: mm.id,
          owner: KVM_DEVICE,
          fn: 'mmu_invalidate_retry',
          seq: mmuSeq,
          cur: this.seq,
          retry,
          inProgress: this.inProgress,
        });
      // A racing fault already installed a writable SPTE of the same frame: this read fault is
      // spurious and keeps it (KVM's cmpxchg of the SPTE fails, it never downgrades one).
      const cur = this.smmu.lookup(mm, page);
      const kept = cur?.writable === true && cur.pfn === snap.pfn && cur.gen === snap.gen;
      if (!retry && !kept) this.smmu.map(mm, page, { ...snap, writable: snap.writable && write });
      this.mmuLock.unlock();
      if (!retry) return true;
      this.retried(page, this.inProgress !== 0 ? 'in-progress' : 'sequence');
    }
    return false;
  }

  /** The writer side of the sequence, after a start or an end changed it (mmu_lock held). */
  private traceInvalidate(phase: 'start' | 'end'): void {
    const k = this.mm.machine.kernel;
    if (k.trace.on)
      k.trace.emit('seq-invalidate', {
        mm: this.mm.id,
        owner: KVM_DEVICE,
        phase,
        seq: this.seq,
        inProgress: this.inProgress,
      });
  }

  private retried(page: number, reason: string): void {
    const k = this.mm.machine.kernel;
    if (k.trace.on)
      k.trace.emit('dev-retry', { dev: KVM_DEVICE, mm: this.mm.id, start: page, reason });
  }

  /** The bytes of the frame a translation points at (a RAM frame or device memory). */
  private frameData(t: DeviceTranslation): PageData {
    const machine = this.mm.machine;
    return machine.phys.page(t.pfn)?.data ?? machine.deviceMemory(t.pfn);
  }
}
