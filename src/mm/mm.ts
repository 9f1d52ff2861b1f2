import { bug, kernel } from '../kernel/kernel.ts';
import { RwSemaphore } from '../kernel/sync/rwsem.ts';
import { SpinLock } from '../kernel/sync/spinlock.ts';
import { hex, PAGE_SIZE, PMD_SIZE } from './constants.ts';
import type { Machine } from './machine.ts';
import type { NotifierSubscriptions } from './mmu-notifier-subscriptions.ts';
import type { RmapOwner } from './page.ts';
import { PageTable } from './page-table.ts';
import { type Pte, pteGen, pteHasRmap, pteMapsFrame, ptePfn } from './pte.ts';
import type { TranslationCache } from './tlb-cache.ts';
import type { Vma } from './vma.ts';

/**
 * An address space (`struct mm_struct`): VMAs ordered by address, the page table, mmap_lock
 * (an rw_semaphore), the page-table lock (a spinlock: one per mm rather than split PTLs), the
 * anon_vma lock the rmap walk takes, `mm_users` and `mm_count`, and the notifier subscriptions.
 */
export class Mm implements RmapOwner {
  readonly id: number;
  readonly machine: Machine;
  /** VMAs sorted by start, non-overlapping. */
  readonly vmas: Vma[] = [];
  /** Page table: virtual page number → entry. */
  readonly pt = new PageTable();
  /**
   * PMDs mapped huge (pmd_trans_huge(), by addr / PMD_SIZE): their 512 entries map one
   * transparent huge page, or the huge zero page, or a device THP (see huge-memory.ts).
   */
  readonly hugePmds = new Set<number>();
  readonly mmapLock: RwSemaphore;
  readonly ptl: SpinLock;
  /** anon_vma->rwsem, as one lock per mm: the rmap walk takes it for read. */
  readonly rmapLock: RwSemaphore;
  /** mm_users: references that keep the address space (its pages) alive. */
  users = 1;
  /** mm_count: references that keep the mm_struct itself alive. */
  count = 1;
  /** mm->notifier_subscriptions: null until the first registration. */
  notifiers: NotifierSubscriptions | null = null;
  /** exit_mmap() has run: the address space is gone. */
  exited = false;
  /** MMF_UNSTABLE: the OOM reaper has torn pages out; faults must not trust the page table. */
  unstable = false;
  /** mm->pinned_vm: pages long-term pinned and charged against RLIMIT_MEMLOCK (ib_umem_get()). */
  pinnedVm = 0;
  /** The TLB of each CPU (task id) that ran in this mm: what a shootdown must reach (mm_cpumask()). */
  readonly cpuTlbs = new Map<number, TranslationCache>();
  /** mm->tlb_flush_batched: reclaim cleared entries of this mm and deferred their CPU flush. */
  tlbFlushBatched = false;
  /** mm->tlb_flush_pending: mmu_gathers of this mm in flight. */
  tlbFlushPending = 0;

  constructor(machine: Machine, id: number) {
    this.machine = machine;
    this.id = id;
    this.mmapLock = new RwSemaphore(`mm${id}.mmap_lock`, 'mmap_lock');
    this.ptl = new SpinLock(`mm${id}.page_table_lock`, 'ptl');
    this.rmapLock = new RwSemaphore(`mm${id}.anon_vma`, 'anon_vma');
  }

  /** find_vma() restricted to containment: the VMA with start ≤ addr < end. */
  findVma(addr: number): Vma | undefined {
    const i = this.vmaIndexAfter(addr) - 1;
    const v = this.vmas[i];
    return v !== undefined && addr < v.end ? v : undefined;
  }

  /** Index of the first VMA whose start is > addr. */
  vmaIndexAfter(addr: number): number {
    let lo = 0;
    let hi = this.vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.vmas[mid]!.start <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The VMAs intersecting [start, end), in address order. */
  vmasIn(start: number, end: number): Vma[] {
    const out: Vma[] = [];
    for (let i = Math.max(0, this.vmaIndexAfter(start) - 1); i < this.vmas.length; i++) {
      const v = this.vmas[i]!;
      if (v.start >= end) break;
      if (v.end > start) out.push(v);
    }
    return out;
  }

  /** True when [start, end) is entirely covered by VMAs. */
  covered(start: number, end: number): boolean {
    let at = start;
    for (const v of this.vmasIn(start, end)) {
      if (v.start > at) return false;
      at = v.end;
    }
    return at >= end;
  }

  /** Inserts a VMA keeping the order (the caller has checked it does not overlap). */
  insertVma(vma: Vma): void {
    this.vmas.splice(this.vmaIndexAfter(vma.start), 0, vma);
  }

  /** Removes a VMA. */
  removeVma(vma: Vma): void {
    const i = this.vmas.indexOf(vma);
    if (i >= 0) this.vmas.splice(i, 1);
  }

  /** True when the PMD holding `addr` is mapped huge. */
  pmdHuge(addr: number): boolean {
    return this.hugePmds.size > 0 && this.hugePmds.has(Math.floor(addr / PMD_SIZE));
  }

  /** The entry for `addr`, if any. */
  pte(addr: number): Pte | undefined {
    return this.pt.get(addr / PAGE_SIZE);
  }

  /**
   * set_pte_at(): installs an entry, maintaining the reverse map and the trace. The caller
   * holds the page-table lock and has dealt with the old entry.
   */
  setPte(addr: number, pte: Pte): void {
    this.pt.set(addr / PAGE_SIZE, pte);
    if (pteHasRmap(pte)) pte.page.addRmap(this, addr);
    this.checkCow(addr, pte);
    this.tracePteSet(addr, pte);
  }

  /**
   * An anonymous page another address space maps (shared since fork) may not be mapped
   * writable: a write would reach both (PageAnonExclusive's rule).
   */
  private checkCow(addr: number, pte: Pte): void {
    const page = pte.page;
    if (pte.kind !== 'page' || !pte.writable || page === null || page.kind !== 'anon') return;
    const other = page.rmap.find((e) => e.mm !== this) as { mm: Mm; addr: number } | undefined;
    if (other !== undefined)
      bug(
        'cow',
        `mm${this.id} ${hex(addr)} maps pfn ${page.pfn} writable while mm${other.mm.id} ${hex(other.addr)} maps it too (copy-on-write broken)`,
      );
  }

  /**
   * Changes the rights of a present entry (write-protect, PROT_NONE, a write fault's reuse)
   * and returns the new entry. It is a new object, not the old one changed: faults compare
   * entries by identity as pte_same() compares values, and a fault that looked at the
   * read-only entry must see that it has changed.
   */
  protectPte(addr: number, pte: Pte, readable: boolean, writable: boolean): Pte {
    const now = { ...pte, readable, writable };
    this.pt.set(addr / PAGE_SIZE, now);
    this.checkCow(addr, now);
    this.tracePteSet(addr, now);
    return now;
  }

  /**
   * The 'pte-set' event of a present or device-private entry (the oracles' view of the CPU
   * page table: a device may use what either names).
   */
  private tracePteSet(addr: number, pte: Pte): void {
    const k = kernel();
    if (!k.trace.on || !pteMapsFrame(pte)) return;
    k.trace.emit('pte-set', {
      mm: this.id,
      addr,
      pfn: ptePfn(pte),
      gen: pteGen(pte),
      readable: pte.readable,
      writable: pte.writable,
    });
  }

  /**
   * ptep_get_and_clear(): removes the entry and its reverse-map entry and returns it. The
   * frame's reference is the caller's to drop, after the TLB flush.
   */
  clearPte(addr: number): Pte | undefined {
    const vpn = addr / PAGE_SIZE;
    const pte = this.pt.get(vpn);
    if (pte === undefined) return undefined;
    this.pt.delete(vpn);
    this.unmapped(addr, pte);
    return pte;
  }

  /**
   * Replaces a present or device-private entry by a non-present one (swap or migration
   * entry) in place.
   */
  replacePte(addr: number, next: Pte): Pte | undefined {
    const vpn = addr / PAGE_SIZE;
    const old = this.pt.get(vpn);
    this.pt.set(vpn, next);
    if (old !== undefined) this.unmapped(addr, old, next);
    return old;
  }

  private unmapped(addr: number, pte: Pte, next?: Pte): void {
    if (pteHasRmap(pte)) pte.page.removeRmap(this, addr);
    const to = next?.kind;
    const k = kernel();
    if (k.trace.on && pteMapsFrame(pte)) {
      const e = { mm: this.id, addr, pfn: ptePfn(pte), gen: pteGen(pte) };
      k.trace.emit('pte-clear', to === 'swap' || to === 'migration' ? { ...e, to } : e);
    }
  }

  /**
   * The addresses with an entry in [start, end), ascending. Walks whichever is smaller:
   * the range or the table.
   */
  addressesIn(start: number, end: number): number[] {
    const first = start / PAGE_SIZE;
    const last = end / PAGE_SIZE;
    const out: number[] = [];
    if (last - first <= this.pt.size) {
      for (let v = first; v < last; v++) if (this.pt.has(v)) out.push(v * PAGE_SIZE);
      return out;
    }
    for (const v of this.pt.keys()) if (v >= first && v < last) out.push(v * PAGE_SIZE);
    return out.sort((a, b) => a - b);
  }

  /** Resident frames mapped (for reports). */
  get rss(): number {
    let n = 0;
    for (const p of this.pt.values()) if (p.kind === 'page' && p.page?.kind !== 'zero') n++;
    return n;
  }

  toString(): string {
    return `mm${this.id}`;
  }
}
