/**
 * Reclaim's batched TLB flush (mm/rmap.c): try_to_unmap_one() with TTU_BATCH_FLUSH defers the
 * CPU flush of the entries it clears (set_tlb_ubc_flush_pending()) until shrink_folio_list()
 * calls try_to_unmap_flush() before the pages go out; any other path about to change entries
 * of such an mm first completes it (flush_tlb_batched_pending()).
 */
import { kernel } from '../kernel/kernel.ts';
import { TASK_SIZE } from './constants.ts';
import type { Mm } from './mm.ts';
import { archInvalidateSecondaryTlbs } from './mmu-notifier.ts';
import { flushTlbRange } from './tlb.ts';

/** The mms whose CPU flush the running reclaim deferred (current->tlb_ubc). */
const UBC = Symbol('tlb_ubc');

function pendingBatch(): Set<Mm> {
  const locals = kernel().current!.locals;
  let set = locals.get(UBC) as Set<Mm> | undefined;
  if (set === undefined) {
    set = new Set();
    locals.set(UBC, set);
  }
  return set;
}

/**
 * set_tlb_ubc_flush_pending(): try_to_unmap_one() with TTU_BATCH_FLUSH cleared an entry of
 * `mm`; the CPU flush waits for try_to_unmap_flush(), but secondary TLBs are invalidated now
 * (x86's arch_tlbbatch_add_pending() calls the hook over the whole mm since v6.6).
 */
export function setTlbUbcFlushPending(mm: Mm): void {
  pendingBatch().add(mm);
  mm.tlbFlushBatched = true;
  archInvalidateSecondaryTlbs(mm, 0, TASK_SIZE);
}

/** try_to_unmap_flush(): the deferred CPU flushes of this reclaim, before its pages are freed. */
export function tryToUnmapFlush(): void {
  const batch = pendingBatch();
  // A path that ran flush_tlb_batched_pending() meanwhile already did it.
  for (const mm of batch) flushTlbBatchedPending(mm);
  batch.clear();
}

/**
 * flush_tlb_batched_pending(): a path about to change entries of `mm` (zap, mprotect, mremap,
 * MADV_FREE) first completes a flush reclaim deferred, or it could miss an entry reclaim
 * already cleared and return while a CPU still holds it (3ea277194daa, v4.13).
 */
export function flushTlbBatchedPending(mm: Mm): void {
  if (!mm.tlbFlushBatched) return;
  flushTlbRange(mm, 0, TASK_SIZE);
  mm.tlbFlushBatched = false;
}
