/**
 * The reverse-map walks reclaim and migration use (rmap_walk): for each PTE mapping a frame,
 * the rmap lock of its mm (anon_vma) or file (i_mmap_rwsem) is held for read.
 */
import type { RwSemaphore } from '../kernel/sync/rwsem.ts';
import type { Co } from '../kernel/task.ts';
import { PAGE_SIZE } from './constants.ts';
import { File } from './file.ts';
import type { Mm } from './mm.ts';
import { clearFlushYoung } from './mmu-notifier.ts';
import type { Page, RmapEntry } from './page.ts';
import { flushTlbRange } from './tlb.ts';

/** The rmap lock guarding the mappings of `page` in `mm`: i_mmap_rwsem or anon_vma. */
function rmapLockOf(page: Page, mm: Mm): RwSemaphore {
  return page.mapping instanceof File ? page.mapping.iMmapLock : mm.rmapLock;
}

/**
 * Runs `fn` for each mapping of `page` with its rmap lock held for read. A mapping that went
 * away while the walk waited for the lock is skipped: Linux walks the VMAs still linked to the
 * anon_vma or i_mmap tree under that lock, so it never visits one exit or munmap unlinked.
 */
export function* rmapWalk(page: Page, fn: (mm: Mm, addr: number) => Co<void>): Co {
  for (const e of [...page.rmap] as RmapEntry[]) {
    const mm = e.mm as Mm;
    const lock = rmapLockOf(page, mm);
    yield* lock.downRead();
    try {
      if (!page.rmap.includes(e) || mm.findVma(e.addr) === undefined) continue;
      yield* fn(mm, e.addr);
    } finally {
      lock.upRead();
    }
  }
}

/**
 * folio_referenced(): test-and-clear the accessed bit of every mapping under the PTL, with
 * mmu_notifier_clear_flush_young() (which runs under the PTL and must not sleep).
 */
export function* pageReferenced(page: Page): Co<boolean> {
  let young = false;
  yield* rmapWalk(page, function* (mm, addr) {
    yield* mm.ptl.lock();
    const pte = mm.pte(addr);
    if (pte !== undefined && pte.page === page) {
      if (pte.accessed) {
        pte.accessed = false;
        flushTlbRange(mm, addr, addr + PAGE_SIZE);
        young = true;
      }
      if (yield* clearFlushYoung(mm, addr, addr + PAGE_SIZE)) young = true;
    }
    mm.ptl.unlock();
  });
  return young;
}
