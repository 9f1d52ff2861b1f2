/**
 * The CPU TLBs and their flushes: flush_tlb_mm_range() (a shootdown of every CPU that ran the
 * mm, then the secondary-TLB hook) and the mmu_gather that frees unmapped pages only after the
 * flush covering them. Reclaim's batched flush is in tlb-batch.ts.
 */
import { charge } from '../cost/charge.ts';
import { kernel } from '../kernel/kernel.ts';
import { TASK_SIZE } from './constants.ts';
import type { Mm } from './mm.ts';
import { archInvalidateSecondaryTlbs } from './mmu-notifier.ts';
import type { Page } from './page.ts';
import { type CacheGeometry, TranslationCache } from './tlb-cache.ts';

/**
 * A CPU's TLB: the L1 data TLB of recent x86 cores holds 64 4 KiB translations, 4-way set
 * associative. Small, so worlds of a few dozen pages see evictions.
 */
export const CPU_TLB: CacheGeometry = { sets: 16, ways: 4 };
/** Its entries. */
export const CPU_TLB_ENTRIES = CPU_TLB.sets * CPU_TLB.ways;

/**
 * The TLB of the running CPU (task) for `mm`, made at its first access (the CPU joins
 * mm_cpumask()); null when the machine models no TLB or no task runs.
 */
export function cpuTlb(mm: Mm): TranslationCache | null {
  if (!mm.machine.cpuTlbs) return null;
  const t = kernel().current;
  if (t === null) return null;
  let tlb = mm.cpuTlbs.get(t.id);
  if (tlb === undefined) {
    tlb = new TranslationCache(`cpu${t.id} (${t.name})`, 'cpu', mm, CPU_TLB);
    mm.cpuTlbs.set(t.id, tlb);
  }
  return tlb;
}

/**
 * flush_tlb_mm_range(): the CPU TLB flush of [start, end) on every CPU of the mm (the IPI
 * shootdown completes before it returns), then the secondary TLBs through the arch hook
 * (since v6.6). Does not sleep.
 */
export function flushTlbRange(mm: Mm, start: number, end: number): void {
  for (const tlb of mm.cpuTlbs.values()) tlb.invalidate(start, end);
  const k = kernel();
  if (k.trace.on) k.trace.emit('tlb-flush', { mm: mm.id, start, end });
  charge('tlb.flush');
  archInvalidateSecondaryTlbs(mm, start, end);
}

/** What a call that took rights away leaves the range: no access, reading, or writing too. */
export type RangeRights = 'none' | 'read' | 'write';

/**
 * Marks the return of a call that took rights away from [start, end) of `mm`, leaving it
 * `leaves`: the TLB oracle checks that no cached translation of the range grants more than
 * both its page-table entry and what the call left.
 */
export function tlbRevoked(
  mm: Mm,
  start: number,
  end: number,
  call: string,
  leaves: RangeRights = 'none',
): void {
  const k = kernel();
  if (k.trace.on) k.trace.emit('tlb-revoked', { mm: mm.id, start, end, call, leaves });
}

/** Pages gathered before the gather flushes mid-walk (MAX_GATHER_BATCH, scaled down). */
export const GATHER_BATCH = 64;

/**
 * struct mmu_gather: pages unmapped by a zap are only put back after the TLB flush that
 * covers them, so no CPU or device can still reach a freed frame.
 */
export class MmuGather {
  readonly mm: Mm;
  private pages: Page[] = [];
  private start = Number.POSITIVE_INFINITY;
  private end = 0;

  /** tlb_gather_mmu(): inc_tlb_flush_pending(), so a concurrent gather sees this one. */
  constructor(mm: Mm) {
    this.mm = mm;
    mm.tlbFlushPending++;
  }

  /** tlb_remove_page(): the page's mapping reference is dropped at the next flush. */
  removePage(page: Page): void {
    this.pages.push(page);
  }

  /** tlb_flush_pte_range(): widens the range the next flush covers. */
  track(addr: number, end: number): void {
    if (addr < this.start) this.start = addr;
    if (end > this.end) this.end = end;
  }

  /** True when the batch is full and the walk should flush (__tlb_remove_page() says so). */
  get full(): boolean {
    return this.pages.length >= GATHER_BATCH;
  }

  /** tlb_flush_mmu(): flush the TLBs over the range, then free the gathered pages. */
  flush(): void {
    if (this.end > this.start) flushTlbRange(this.mm, this.start, this.end);
    this.start = Number.POSITIVE_INFINITY;
    this.end = 0;
    const pages = this.pages;
    this.pages = [];
    const phys = this.mm.machine.phys;
    for (const p of pages) phys.put(p);
  }

  /**
   * tlb_finish_mmu(): the last flush. When another gather of the mm is in flight
   * (mm_tlb_flush_nested()), it may have cleared entries in this range that this walk found
   * empty and did not track, with their flush still to come: flush the whole mm.
   */
  finish(): void {
    // Mutant: before 99baac21e458 (v4.13) a nested gather was not noticed, so one of two
    // racing MADV_DONTNEED calls could return while a CPU still held an entry the other cleared.
    const ignoreNested = kernel().mutant('mm.gather-ignores-nested');
    if (this.mm.tlbFlushPending > 1 && !ignoreNested) this.track(0, TASK_SIZE);
    this.flush();
    this.mm.tlbFlushPending--;
  }
}
