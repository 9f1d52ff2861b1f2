/**
 * madvise(2) (mm/madvise.c) for MADV_HUGEPAGE / MADV_NOHUGEPAGE (hugepage_madvise()) and the
 * two advices that drop memory: MADV_DONTNEED
 * (zap_page_range_single(): one CLEAR invalidation per VMA, pages freed after the flush) and
 * MADV_FREE (madvise_free_single_vma(): private anonymous pages become clean and lazily
 * freeable, reclaim may then discard them instead of swapping). Those two run under mmap_lock
 * held for read, the THP advices under it held for write.
 */
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import {
  hex,
  MADV_DONTNEED,
  MADV_FREE,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  PAGE_SIZE,
  VM_DONTEXPAND,
  VM_HUGEPAGE,
  VM_IO,
  VM_LOCKED,
  VM_MIXEDMAP,
  VM_NOHUGEPAGE,
  VM_PFNMAP,
} from './constants.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from './mmu-notifier.ts';
import { checkUserRange } from './munmap.ts';
import { flushTlbRange, MmuGather, tlbRevoked } from './tlb.ts';
import { flushTlbBatchedPending } from './tlb-batch.ts';
import type { Vma } from './vma.ts';
import { splitToRange } from './vma-split.ts';
import { zapRange } from './zap.ts';

/** Whether an advice is one the model implements (madvise_behavior_valid()). */
function adviceValid(advice: number): boolean {
  return (
    advice === MADV_DONTNEED ||
    advice === MADV_FREE ||
    advice === MADV_HUGEPAGE ||
    advice === MADV_NOHUGEPAGE
  );
}

/** VM_NO_KHUGEPAGED: VMAs hugepage_madvise() leaves as they are. */
const VM_NO_KHUGEPAGED = VM_IO | VM_PFNMAP | VM_MIXEDMAP | VM_DONTEXPAND;

/**
 * hugepage_madvise() through madvise_update_vma(): MADV_HUGEPAGE sets VM_HUGEPAGE and clears
 * VM_NOHUGEPAGE, MADV_NOHUGEPAGE the reverse; a VMA whose flags change is split to the range
 * first. Existing huge mappings stay (Linux does not split them for NOHUGEPAGE either).
 */
function* hugepageMadvise(mm: Mm, start: number, end: number, advice: number): Co {
  const set = advice === MADV_HUGEPAGE ? VM_HUGEPAGE : VM_NOHUGEPAGE;
  const clear = advice === MADV_HUGEPAGE ? VM_NOHUGEPAGE : VM_HUGEPAGE;
  for (const vma of mm.vmasIn(start, end)) {
    const flags = (vma.flags & ~clear) | set;
    if (vma.flags & VM_NO_KHUGEPAGED || flags === vma.flags) continue;
    const parts = yield* splitToRange(mm, Math.max(start, vma.start), Math.min(end, vma.end));
    for (const part of parts) part.flags = flags;
  }
}

/** madvise_dontneed_free_valid_vma() / can_madv_lru_vma(): why `vma` refuses, or null. */
function refusal(vma: Vma, advice: number): string | null {
  if (vma.flags & (VM_LOCKED | VM_PFNMAP))
    return `${vma} is VM_LOCKED or VM_PFNMAP (can_madv_lru_vma() is false)`;
  if (advice === MADV_FREE && !(vma.isAnon && vma.ops === null && !vma.isShared))
    return `MADV_FREE needs private anonymous memory, ${vma} is not`;
  return null;
}

/**
 * madvise_free_single_vma() / madvise_free_pte_range() over [start, end) of a private
 * anonymous VMA: inside one CLEAR invalidation and under the PTL, each present page mapped
 * only here gets a clean, old entry and becomes lazyfree and clean; swap entries are dropped
 * with their slots (the data is disposable). The TLB is flushed over the changed entries
 * before the PTL is released. Pages shared with another mapping (after fork) are left alone.
 */
function* madviseFreeRange(vma: Vma, start: number, end: number): Co {
  const mm = vma.mm;
  // tlb_gather_mmu(): the entries are flushed under the PTL below, but the gather still tells
  // tlb_finish_mmu() about a racing zap whose cleared entries this walk finds empty.
  const tlb = new MmuGather(mm);
  const range = rangeInit(mm, 'CLEAR', start, end);
  yield* invalidateRangeStart(range);
  const addrs = mm.addressesIn(start, end);
  // A page table whose entries reclaim cleared is still walked, and its deferred flush done
  // (the model has no page-table pages: it does so at once, without the PTL).
  if (addrs.length === 0) flushTlbBatchedPending(mm);
  else {
    yield* mm.ptl.lock();
    flushTlbBatchedPending(mm);
    let lo = Number.POSITIVE_INFINITY;
    let hi = 0;
    for (const addr of addrs) {
      const pte = mm.pte(addr);
      if (pte === undefined) continue;
      if (pte.kind === 'swap') {
        mm.clearPte(addr);
        mm.machine.swap.free(pte.swap);
        continue;
      }
      const page = pte.page;
      if (pte.kind !== 'page' || page === null || !page.isAnon || page.mapcount !== 1) continue;
      page.dirty = false;
      page.lazyfree = true;
      if (pte.dirty || pte.accessed) {
        pte.dirty = false;
        pte.accessed = false;
        lo = Math.min(lo, addr);
        hi = Math.max(hi, addr + PAGE_SIZE);
      }
    }
    if (hi > lo) flushTlbRange(mm, lo, hi);
    mm.ptl.unlock();
  }
  yield* invalidateRangeEnd(range);
  tlb.finish();
}

/**
 * madvise(2) with MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE or MADV_NOHUGEPAGE over
 * [addr, addr + len). DONTNEED and FREE take mmap_lock for read, the THP advices for write
 * (they split VMAs: see {@link hugepageMadvise}). DONTNEED zaps each VMA's part
 * (zap_page_range_single(), CLEAR): anonymous memory reads back as zeros, file pages are
 * re-read from the page cache. FREE marks private anonymous pages lazyfree (see
 * {@link madviseFreeRange}).
 *
 * Errors: EINVAL for an unaligned address, a bad length or an advice the model does not
 * implement (nothing changed); EINVAL when a VMA in range is VM_LOCKED or VM_PFNMAP, or, for
 * FREE, not private anonymous memory (the model checks every VMA first and changes nothing,
 * where Linux keeps the advice applied to the VMAs before it); ENOMEM when the range has holes,
 * after the advice was applied to the mapped parts (madvise_walk_vmas()'s unmapped_error).
 * A zero length succeeds without effect.
 */
export function* madvise(mm: Mm, addr: number, len: number, advice: number): Co {
  if (!Number.isInteger(advice) || !adviceValid(advice))
    throw new Errno('EINVAL', `madvise: advice ${String(advice)} is unknown or not modelled`);
  const end = checkUserRange('madvise', addr, len, null);
  if (len === 0) return;
  // madvise_need_mmap_write(): the THP advices change VMA flags (and split VMAs).
  const thp = advice === MADV_HUGEPAGE || advice === MADV_NOHUGEPAGE;
  if (thp) yield* mm.mmapLock.downWrite();
  else yield* mm.mmapLock.downRead();
  try {
    if (thp) yield* hugepageMadvise(mm, addr, end, advice);
    else yield* dropPages(mm, addr, end, advice);
    if (!mm.covered(addr, end))
      throw new Errno('ENOMEM', `madvise: [${hex(addr)}, ${hex(end)}) has unmapped holes`);
  } finally {
    if (thp) mm.mmapLock.upWrite();
    else mm.mmapLock.upRead();
  }
}

/** MADV_DONTNEED / MADV_FREE on each VMA's part of [addr, end), once every VMA accepts it. */
function* dropPages(mm: Mm, addr: number, end: number, advice: number): Co {
  const vmas = mm.vmasIn(addr, end);
  for (const vma of vmas) {
    const why = refusal(vma, advice);
    if (why !== null) throw new Errno('EINVAL', `madvise: ${why}`);
  }
  for (const vma of vmas) {
    const s = Math.max(addr, vma.start);
    const e = Math.min(end, vma.end);
    if (advice === MADV_DONTNEED)
      yield* mmPath('madvise_dontneed_single_vma', mm, zapRange(mm, [vma], s, e, 'CLEAR'));
    else yield* mmPath('madvise_free_single_vma', mm, madviseFreeRange(vma, s, e));
  }
  tlbRevoked(mm, addr, end, 'madvise');
}
