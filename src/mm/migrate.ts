/**
 * Page migration for one page, as compaction does it (migrate_pages → migrate_folio_unmap /
 * migrate_folio_move): every mapping is replaced by a migration entry (a CLEAR invalidation
 * each, TLB flushed), the reference count is checked and the contents copied in one atomic
 * step together with the page-cache switch, then the entries are turned into mappings of the
 * new page and the faults waiting on them are woken.
 */
import { charge } from '../cost/charge.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { PAGE_SIZE } from './constants.ts';
import { File } from './file.ts';
import { splitHugePmd } from './huge-memory.ts';
import type { Machine } from './machine.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from './mmu-notifier.ts';
import { Page, unlockPage } from './page.ts';
import type { Pte } from './pte.ts';
import { rmapWalk } from './rmap.ts';
import { flushTlbRange } from './tlb.ts';

/** One page-table slot holding a migration entry for a page being migrated. */
export interface MigrationSite {
  readonly mm: Mm;
  readonly addr: number;
}

/**
 * The slots holding migration entries of each page under migration. Linux finds them again
 * through the anon_vma / i_mmap of the old folio (remove_migration_ptes()); the model's
 * per-entry reverse map forgets an entry once it is not present, so the sites are recorded.
 */
const inFlight = new WeakMap<Page, MigrationSite[]>();

/**
 * Called by fork when it copies a migration entry of `page` into `mm` at `addr`, so the copy
 * is turned into a mapping of the new page too (Linux finds it through the child's anon_vma).
 */
export function noteMigrationEntryCopy(page: Page, mm: Mm, addr: number): void {
  inFlight.get(page)?.push({ mm, addr });
}

/**
 * Called by mremap when it moves a migration entry of `page` in `mm` from `from` to `to`, so
 * the migration restores the entry where it now is (Linux's rmap walk finds the moved VMA).
 */
export function noteMigrationEntryMove(page: Page, mm: Mm, from: number, to: number): void {
  const sites = inFlight.get(page);
  const i = sites?.findIndex((s) => s.mm === mm && s.addr === from) ?? -1;
  if (sites !== undefined && i >= 0) sites[i] = { mm, addr: to };
}

/**
 * Starts tracking the migration entries of `page` (fork and mremap report theirs); the
 * returned sites are its record until {@link untrackMigration}.
 */
export function trackMigration(page: Page): MigrationSite[] {
  const sites: MigrationSite[] = [];
  inFlight.set(page, sites);
  return sites;
}

/** The sites of `page`'s migration entries, tracked since {@link trackMigration}. */
export function migrationSites(page: Page): MigrationSite[] {
  return inFlight.get(page) ?? trackMigration(page);
}

/** The migration of `page` is over: its entries are gone; waiting faults look again. */
export function untrackMigration(machine: Machine, page: Page): void {
  inFlight.delete(page);
  machine.migrationWait.wakeUpAll();
}

/** make_*_migration_entry(): a non-present entry remembering the old rights. */
export function migrationEntry(page: Page, from: Pte): Pte {
  return {
    kind: 'migration',
    page,
    swap: 0,
    pfn: 0,
    readable: from.readable,
    writable: from.writable,
    dirty: from.dirty,
    accessed: from.accessed,
  };
}

/**
 * migrate_pages() of one page (MIGRATE_SYNC, as compaction): moves `page` to a new frame.
 * Returns false, changing nothing, for a page that cannot move now: pinned (FOLL_PIN), locked
 * (under reclaim or another migration), the zero page, a free or kernel frame, no free frame
 * for the copy, or a reference that appeared while unmapping (GUP) — in that case the old page
 * is mapped back. True when the page moved (or was freed under us: nothing was left to move).
 */
export function* migratePage(machine: Machine, page: Page): Co<boolean> {
  return yield* mmPath('migrate_pages', machine, migratePageBody(machine, page));
}

function* migratePageBody(machine: Machine, page: Page): Co<boolean> {
  if (!(page instanceof Page) || machine.phys.page(page.pfn) !== page)
    throw new Errno('EINVAL', 'migratePage: not a frame of this machine');
  if (page.kind === 'free' || page.kind === 'zero' || page.kind === 'kernel') return false;
  if (page.pins > 0 || page.locked) return false;
  const phys = machine.phys;
  // folio_trylock() + isolation: our own reference keeps the frame until we are done.
  page.locked = true;
  phys.get(page);
  try {
    const fresh = yield* machine.allocPage(page.kind);
    if (fresh === null) return false;
    fresh.locked = true;
    try {
      if (page.pins > 0) return false;
      const sites = trackMigration(page);
      try {
        yield* unmapAll(machine, page, sites);
        const moved = commit(machine, page, fresh);
        yield* remapAll(machine, page, moved ? fresh : page, sites);
        return moved;
      } finally {
        untrackMigration(machine, page);
      }
    } finally {
      unlockPage(machine, fresh);
      phys.put(fresh);
    }
  } finally {
    unlockPage(machine, page);
    phys.put(page);
  }
}

/**
 * try_to_migrate(): for each mapping, a CLEAR invalidation of the page, and under the PTL the
 * entry becomes a migration entry, the TLB is flushed and the mapping's reference dropped.
 */
export function* unmapAll(machine: Machine, page: Page, sites: MigrationSite[]): Co {
  yield* rmapWalk(page, function* (mm: Mm, addr: number) {
    // TTU_SPLIT_HUGE_PMD: one page of a huge mapping is unmapped on its own.
    if (mm.pmdHuge(addr)) yield* splitHugePmd(mm, addr);
    const range = rangeInit(mm, 'CLEAR', addr, addr + PAGE_SIZE);
    yield* invalidateRangeStart(range);
    yield* mm.ptl.lock();
    const pte = mm.pte(addr);
    if (pte !== undefined && (pte.kind === 'page' || pte.kind === 'device') && pte.page === page) {
      if (pte.dirty) page.dirty = true;
      mm.replacePte(addr, migrationEntry(page, pte));
      if (pte.kind === 'page') flushTlbRange(mm, addr, addr + PAGE_SIZE);
      machine.phys.put(page);
      sites.push({ mm, addr });
    }
    mm.ptl.unlock();
    yield* invalidateRangeEnd(range);
  });
}

/**
 * folio_migrate_mapping() + folio_migrate_copy() in one step: the page must be held only by
 * the migration (and the page cache); then the contents and state move and the page cache
 * points at the new frame, whose reference the cache takes over.
 */
function commit(machine: Machine, page: Page, fresh: Page): boolean {
  const file =
    page.mapping instanceof File && page.mapping.cache.get(page.index) === page
      ? page.mapping
      : null;
  const expected = 1 + (file !== null ? 1 : 0);
  if (page.mapcount !== 0 || page.pins !== 0 || page.refcount !== expected) return false;
  fresh.data.copyFrom(page.data);
  charge('page.copy');
  fresh.dirty = page.dirty;
  fresh.referenced = page.referenced;
  fresh.lazyfree = page.lazyfree;
  const phys = machine.phys;
  if (phys.lru.has(page)) phys.lru.add(fresh);
  if (file !== null) {
    fresh.mapping = file;
    fresh.index = page.index;
    phys.get(fresh);
    file.cache.set(page.index, fresh);
    page.mapping = null;
    phys.put(page);
  }
  return true;
}

/**
 * remove_migration_ptes(): each recorded migration entry becomes a mapping of `target` with the
 * rights it had (no invalidation: non-present to present). A site whose entry is gone was
 * zapped meanwhile; one moved by mremap is found by a scan of its address space.
 */
export function* remapAll(machine: Machine, page: Page, target: Page, sites: MigrationSite[]): Co {
  // remove_migration_ptes() walks the rmap under the anon_vma lock, which mremap's move of the
  // entries also takes: an entry is found where it is, never half-way through a move (mremap
  // updates its site, noteMigrationEntryMove()).
  // Sites grow while this runs (fork copies an entry into a child): the loops re-read them.
  const visited = new Set<Mm>();
  for (let j = 0; j < sites.length; j++) {
    const mm = sites[j]!.mm;
    if (visited.has(mm)) continue;
    visited.add(mm);
    yield* mm.rmapLock.downRead();
    try {
      let lost = false;
      for (let i = 0; i < sites.length; i++) {
        const site = sites[i]!;
        if (site.mm === mm && !(yield* remapOne(machine, mm, site.addr, page, target))) lost = true;
      }
      if (!lost) continue;
      for (const [vpn, pte] of [...mm.pt])
        if (pte.kind === 'migration' && pte.page === page)
          yield* remapOne(machine, mm, vpn * PAGE_SIZE, page, target);
    } finally {
      mm.rmapLock.upRead();
    }
  }
}

function* remapOne(machine: Machine, mm: Mm, addr: number, page: Page, target: Page): Co<boolean> {
  yield* mm.ptl.lock();
  const pte = mm.pte(addr);
  const ours = pte !== undefined && pte.kind === 'migration' && pte.page === page;
  if (ours) {
    machine.phys.get(target);
    mm.setPte(addr, {
      // A device-private target is mapped by a device-private entry (remove_migration_pte()).
      kind: target.pgmap !== null ? 'device' : 'page',
      page: target,
      swap: 0,
      pfn: 0,
      readable: pte.readable,
      writable: pte.writable,
      dirty: pte.dirty,
      accessed: pte.accessed,
    });
  }
  mm.ptl.unlock();
  return ours;
}
