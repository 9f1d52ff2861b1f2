/**
 * Page reclaim (shrink_folio_list / kswapd / direct reclaim): ages LRU pages through the
 * reverse map and the young notifiers, unmaps cold pages with a CLEAR invalidation per
 * mapping (try_to_unmap_one), writes anonymous pages to swap and dirty file pages back, and
 * frees them. Pinned, locked and shmem pages stay.
 */
import { charge } from '../cost/charge.ts';
import { preempt } from '../kernel/context.ts';
import type { Co } from '../kernel/task.ts';
import { PAGE_SIZE } from './constants.ts';
import { File } from './file.ts';
import { splitHugePmd } from './huge-memory.ts';
import type { Machine } from './machine.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from './mmu-notifier.ts';
import { type Page, unlockPage } from './page.ts';
import type { Pte } from './pte.ts';
import { pageReferenced, rmapWalk } from './rmap.ts';
import { setTlbUbcFlushPending, tryToUnmapFlush } from './tlb-batch.ts';

/**
 * try_to_unmap(): unmaps every mapping of `page`; anonymous ones get swap entries. An anonymous
 * page without a slot is a MADV_FREE page being discarded: if it was written meanwhile, the
 * walk stops and keeps it (try_to_unmap_one()'s folio_set_swapbacked() abort).
 */
export function* tryToUnmap(machine: Machine, page: Page, swapSlot: number | null): Co<boolean> {
  return yield* mmPath('try_to_unmap', machine, tryToUnmapBody(machine, page, swapSlot));
}

function* tryToUnmapBody(machine: Machine, page: Page, swapSlot: number | null): Co<boolean> {
  let redirtied = false;
  yield* rmapWalk(page, function* (mm: Mm, addr: number) {
    if (redirtied) return;
    // TTU_SPLIT_HUGE_PMD: one page of a huge mapping is unmapped on its own.
    if (mm.pmdHuge(addr)) yield* splitHugePmd(mm, addr);
    const range = rangeInit(mm, 'CLEAR', addr, addr + PAGE_SIZE);
    yield* invalidateRangeStart(range);
    yield* mm.ptl.lock();
    const pte = mm.pte(addr);
    if (pte !== undefined && pte.page === page && pte.kind === 'page') {
      if (pte.dirty) page.dirty = true;
      if (page.isAnon && swapSlot === null && page.dirty) {
        page.lazyfree = false;
        redirtied = true;
      } else if (page.isAnon && swapSlot !== null) {
        machine.swap.dup(swapSlot);
        // The slot was filled before the walk; a write through this entry since then must
        // reach swap too (Linux writes the page out only after try_to_unmap()).
        machine.swap.write(swapSlot, page.data);
        mm.replacePte(addr, swapEntry(swapSlot));
      } else {
        mm.clearPte(addr);
      }
      if (!redirtied) {
        // TTU_BATCH_FLUSH: the CPU flush waits for try_to_unmap_flush(); the mapping's
        // reference goes now, the frame stays held by reclaim until after that flush.
        setTlbUbcFlushPending(mm);
        machine.phys.put(page);
      }
    }
    mm.ptl.unlock();
    yield* invalidateRangeEnd(range);
  });
  return page.mapcount === 0;
}

function swapEntry(slot: number): Pte {
  return {
    kind: 'swap',
    page: null,
    swap: slot,
    pfn: 0,
    readable: false,
    writable: false,
    dirty: false,
    accessed: false,
  };
}

/** Tries to free one page; true when it went back to the allocator (or will, with its refs). */
function* reclaimPage(machine: Machine, page: Page): Co<boolean> {
  if (page.locked || page.pins > 0 || page.kind === 'free') return false;
  const file = page.mapping instanceof File ? page.mapping : null;
  if (file?.shmem) return false;
  page.locked = true;
  machine.phys.get(page);
  let slot: number | null = null;
  try {
    if (yield* pageReferenced(page)) return false;
    if (page.isAnon && page.mapcount > 0) {
      const discard = page.lazyfree && !page.dirty;
      if (!discard) {
        slot = machine.swap.store(page.data);
        if (slot === null) return false;
        machine.swap.inReclaim.add(slot);
      }
    }
    // Mappings already turned into swap entries keep the slot: the page is read-only
    // wherever it is shared, so the copy stays right.
    if (page.mapcount > 0 && !(yield* tryToUnmap(machine, page, slot))) return false;
    // shrink_folio_list() goes on with the rest of its list before it flushes.
    yield* preempt();
    // try_to_unmap_flush_dirty() before pageout(): a CPU that still held a dirty entry may
    // have written since the unmap, so the page goes out only after the flush.
    tryToUnmapFlush();
    if (slot !== null) {
      // pageout(): the one write to the device (the slot's earlier copies model the swap cache).
      machine.swap.write(slot, page.data);
      charge('swap.out');
    }
    if (file !== null) {
      if (page.dirty) file.writeback(page);
      file.dropPage(page);
    }
    return true;
  } finally {
    // The isolation reference: the frame is freed here at the earliest, after the flush.
    tryToUnmapFlush();
    machine.phys.put(page);
    // The swap cache's own reference (SWAP_HAS_CACHE): it kept the slot alive while the walk
    // slept between mappings, though a mapping already converted may have been swapped in
    // (freeing its reference) and the slot would otherwise have gone to another page.
    if (slot !== null) {
      machine.swap.inReclaim.delete(slot);
      machine.swap.cacheWait.wakeUpAll();
      machine.swap.free(slot);
    }
    unlockPage(machine, page);
  }
}

/**
 * shrink_lru(): takes pages from the cold end of the LRU, oldest first; a page that cannot go
 * now (referenced, pinned, locked) is rotated to the hot end (second chance). Stops once
 * `target` frames were freed or every page was looked at twice. Returns the frames freed.
 */
export function* shrinkMemory(machine: Machine, target: number): Co<number> {
  return yield* mmPath('shrink_folio_list', machine, shrinkMemoryBody(machine, target));
}

function* shrinkMemoryBody(machine: Machine, target: number): Co<number> {
  const phys = machine.phys;
  const before = phys.freeFrames;
  const limit = 2 * phys.lru.size;
  // One live iterator is the queue's head: everything before it was taken off by this scan,
  // and pages added meanwhile (rotated ones too) come after. A fresh values().next() per page
  // would skip every deleted entry from the start each time (quadratic on a large LRU).
  const head = phys.lru.values();
  for (let scanned = 0; scanned < limit && phys.freeFrames - before < target; scanned++) {
    const page = head.next().value;
    if (page === undefined) break;
    phys.lru.delete(page);
    const gen = page.gen;
    if (yield* reclaimPage(machine, page)) continue;
    // Rotate, unless the frame was freed (or freed and reused) while we looked at it.
    if (page.gen === gen && page.kind !== 'free') phys.lru.add(page);
  }
  return phys.freeFrames - before;
}
