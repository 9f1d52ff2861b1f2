import { kernel } from '../kernel/kernel.ts';
import type { Mm } from './mm.ts';
import { archInvalidateSecondaryTlbs } from './mmu-notifier.ts';
import type { Page } from './page.ts';

/**
 * flush_tlb_mm_range(): the CPU TLB flush of [start, end), which also flushes secondary TLBs
 * through the arch hook (since v6.6). Does not sleep.
 */
export function flushTlbRange(mm: Mm, start: number, end: number): void {
  const k = kernel();
  if (k.trace.on) k.trace.emit('tlb-flush', { mm: mm.id, start, end });
  archInvalidateSecondaryTlbs(mm, start, end);
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

  constructor(mm: Mm) {
    this.mm = mm;
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

  /** tlb_finish_mmu(). */
  finish(): void {
    this.flush();
  }
}
