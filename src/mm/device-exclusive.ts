/**
 * Device-exclusive entries (mm/rmap.c make_device_exclusive(), mm/memory.c
 * remove_device_exclusive_entry()): a device that needs atomic access to an anonymous page
 * swaps the CPU entry for a non-present device-exclusive entry under an EXCLUSIVE
 * invalidation; the next CPU access invalidates again and restores the entry.
 */
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { hex, PAGE_SIZE } from './constants.ts';
import { getUserPages } from './gup.ts';
import { splitHugePmd } from './huge-memory.ts';
import type { Mm } from './mm.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from './mmu-notifier.ts';
import { lockPage, type Page, unlockPage } from './page.ts';
import type { Pte } from './pte.ts';
import { flushTlbRange } from './tlb.ts';

/** make_device_exclusive() gives up on a page that keeps changing under it after this many tries. */
const MAX_TRIES = 100;

/**
 * make_device_exclusive(): faults the page at `addr` in writable (breaking COW), locks it and,
 * under an EXCLUSIVE invalidation with `owner`, replaces its entry by a device-exclusive one.
 * Returns the page locked and referenced: the caller maps it in its device, then unlocks and
 * puts it. The caller holds mmap_lock. EOPNOTSUPP for a page that is not anonymous; the GUP's
 * errors (EFAULT) for an address it cannot fault in writable.
 */
export function* makeDeviceExclusive(mm: Mm, addr: number, owner: unknown): Co<Page> {
  if (!Number.isSafeInteger(addr) || addr < 0 || addr % PAGE_SIZE !== 0)
    throw new Errno('EINVAL', `make_device_exclusive: ${String(addr)} is not a page address`);
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const [page] = yield* getUserPages(mm, addr, 1, { write: true });
    if (page!.kind !== 'anon') {
      mm.machine.phys.put(page!);
      throw new Errno('EOPNOTSUPP', `make_device_exclusive: ${hex(addr)} is not anonymous memory`);
    }
    yield* lockPage(mm.machine, page!);
    // A device-exclusive entry is a PTE: a THP's PMD is split first.
    yield* splitHugePmd(mm, addr);
    if (yield* swapEntry(mm, addr, page!, owner)) return page!;
    unlockPage(mm.machine, page!);
    mm.machine.phys.put(page!);
  }
  throw new Errno('EBUSY', `make_device_exclusive: the entry at ${hex(addr)} kept changing`);
}

/** Under the invalidation and the PTL: the entry must still map `page` writable. */
function* swapEntry(mm: Mm, addr: number, page: Page, owner: unknown): Co<boolean> {
  const range = rangeInit(mm, 'EXCLUSIVE', addr, addr + PAGE_SIZE, { owner });
  yield* invalidateRangeStart(range);
  yield* mm.ptl.lock();
  const pte = mm.pte(addr);
  const ok = pte?.kind === 'page' && pte.page === page && pte.writable && !mm.pmdHuge(addr);
  if (ok) {
    mm.clearPte(addr);
    flushTlbRange(mm, addr, addr + PAGE_SIZE);
    mm.setPte(addr, { ...pte, kind: 'exclusive', accessed: false });
  }
  mm.ptl.unlock();
  yield* invalidateRangeEnd(range);
  return ok;
}

/** restore_exclusive_pte(): the entry maps its page again, with the rights it had (PTL held). */
export function restoreExclusivePte(mm: Mm, addr: number, pte: Pte): void {
  mm.clearPte(addr);
  mm.setPte(addr, { ...pte, kind: 'page', accessed: true });
}

/**
 * remove_device_exclusive_entry(): a CPU access to a device-exclusive entry locks the page,
 * invalidates it (EXCLUSIVE, no owner: the device loses its atomic access) and restores the
 * entry. The fault then runs again.
 */
export function* removeDeviceExclusiveEntry(mm: Mm, addr: number, pte: Pte): Co {
  const page = pte.page!;
  const phys = mm.machine.phys;
  phys.get(page);
  yield* lockPage(mm.machine, page);
  try {
    const range = rangeInit(mm, 'EXCLUSIVE', addr, addr + PAGE_SIZE);
    yield* invalidateRangeStart(range);
    yield* mm.ptl.lock();
    if (mm.pte(addr) === pte) restoreExclusivePte(mm, addr, pte);
    mm.ptl.unlock();
    yield* invalidateRangeEnd(range);
  } finally {
    unlockPage(mm.machine, page);
    phys.put(page);
  }
}
