/**
 * Unmapping page ranges (unmap_page_range / zap_pte_range / unmap_region): entries are
 * cleared under the page-table lock, their pages gathered and put only after the TLB flush,
 * inside one invalidate_range_start/end pair.
 */
import { preempt } from '../kernel/context.ts';
import { kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { PAGE_SIZE } from './constants.ts';
import { dropHugePmds, splitPartialPmds } from './huge-memory.ts';
import type { Mm } from './mm.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from './mmu-notifier.ts';
import type { MmuNotifyEvent } from './mmu-notifier-types.ts';
import { ptePresent } from './pte.ts';
import { MmuGather } from './tlb.ts';
import { flushTlbBatchedPending } from './tlb-batch.ts';
import type { Vma } from './vma.ts';

/** What a zap removes: everything, or (truncate) only entries of file pages. */
export interface ZapDetails {
  readonly onlyFilePages?: boolean;
}

/**
 * zap_pte_range() over [start, end) of one VMA: clears entries under the PTL, frees swap
 * slots, gathers pages; when the gather fills it drops the PTL and flushes mid-walk.
 */
export function* zapVmaRange(
  gather: MmuGather,
  vma: Vma,
  start: number,
  end: number,
  details: ZapDetails = {},
): Co {
  const mm = vma.mm;
  const addrs = mm.addressesIn(Math.max(start, vma.start), Math.min(end, vma.end));
  // Entries reclaim cleared leave their page table walked and its deferred flush due (done at
  // once: the model has no page-table pages).
  if (addrs.length === 0) return flushTlbBatchedPending(mm);
  yield* mm.ptl.lock();
  flushTlbBatchedPending(mm);
  for (const addr of addrs) {
    const pte = mm.pte(addr);
    if (pte === undefined) continue;
    if (details.onlyFilePages && !(pte.kind === 'page' && pte.page?.kind === 'file')) continue;
    mm.clearPte(addr);
    // tlb_remove_tlb_entry(): only a present entry can be in a TLB.
    if (ptePresent(pte)) gather.track(addr, addr + PAGE_SIZE);
    if (pte.kind === 'swap') mm.machine.swap.free(pte.swap);
    // zap_nonpresent_ptes(): a device-private or device-exclusive page loses this mapping's
    // reference at once.
    else if (pte.kind === 'device' || pte.kind === 'exclusive') {
      if (pte.dirty) pte.page!.dirty = true;
      mm.machine.phys.put(pte.page!);
    } else if (pte.kind === 'page' && pte.page !== null && pte.page.kind !== 'zero') {
      if (pte.dirty) pte.page.dirty = true;
      gather.removePage(pte.page);
    }
    if (gather.full) {
      mm.ptl.unlock();
      gather.flush();
      yield* mm.ptl.lock();
    }
  }
  // zap_huge_pmd(): the caller split the PMDs the range covers in part.
  if (!details.onlyFilePages) dropHugePmds(mm, start, end);
  mm.ptl.unlock();
  // zap_pmd_range()'s cond_resched(): the entries are cleared, their flush is still to come.
  yield* preempt();
}

/**
 * unmap_region() / zap_page_range_single(): one invalidation of `event` over [start, end),
 * the zaps of every VMA, the end, then the final flush that frees the last batch.
 */
export function* zapRange(
  mm: Mm,
  vmas: readonly Vma[],
  start: number,
  end: number,
  event: MmuNotifyEvent,
  details: ZapDetails = {},
): Co {
  // zap_pmd_range() splits a huge PMD the range covers in part (Linux inside the range, the
  // model just before it: the split has its own invalidation either way).
  if (mm.hugePmds.size > 0 && !details.onlyFilePages)
    for (const vma of vmas)
      yield* splitPartialPmds(mm, Math.max(start, vma.start), Math.min(end, vma.end));
  const gather = new MmuGather(mm);
  const range = rangeInit(mm, event, start, end);
  if (kernel().mutant('mm.free-before-start')) {
    // Mutant: pages are unmapped and freed before the secondary MMUs are told.
    for (const vma of vmas) yield* zapVmaRange(gather, vma, start, end, details);
    gather.finish();
    yield* invalidateRangeStart(range);
    yield* invalidateRangeEnd(range);
    return;
  }
  yield* invalidateRangeStart(range);
  for (const vma of vmas) yield* zapVmaRange(gather, vma, start, end, details);
  yield* invalidateRangeEnd(range);
  // tlb_finish_mmu() after unmap_vmas(): the last batch is freed after the end.
  gather.finish();
}
