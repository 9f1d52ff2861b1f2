/**
 * Migration to and from device-private memory (mm/migrate_device.c): migrate_vma_setup()
 * (migrate_vma_collect() then migrate_device_unmap()), migrate_vma_pages() with
 * migrate_vma_insert_page() for holes, migrate_vma_finalize(), and the pfn-range variants
 * migrate_device_range() / migrate_device_pages() / migrate_device_finalize() a driver uses
 * to evict its memory. The driver allocates the destination pages and copies the data
 * between setup and pages; the core only moves the mappings. With SELECT_COMPOUND a THP moves
 * whole (migrate_vma_collect_huge_pmd(), migrate_vma_insert_huge_pmd_page(), and
 * migrate_vma_split_folio() when the driver gives small pages).
 */
import { kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import {
  HPAGE_PMD_NR,
  hex,
  PAGE_SIZE,
  PMD_SIZE,
  VM_DONTEXPAND,
  VM_IO,
  VM_MIXEDMAP,
  VM_PFNMAP,
} from './constants.ts';
import {
  hugePmdsIn,
  mapHugePmd,
  pmdNone,
  splitHugePmd,
  splitPartialPmds,
  thpEligible,
} from './huge-memory.ts';
import type { Machine } from './machine.ts';
import { isDevicePrivatePage } from './memremap.ts';
import { migrationEntry, migrationSites, remapAll, unmapAll, untrackMigration } from './migrate.ts';
import { mmPath } from './mm-path.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from './mmu-notifier.ts';
import type { MmuNotifierRange } from './mmu-notifier-types.ts';
import { Page, unlockPage } from './page.ts';
import type { Pte } from './pte.ts';
import { flushTlbRange } from './tlb.ts';
import type { Vma } from './vma.ts';

/** MIGRATE_VMA_SELECT_SYSTEM: collect system pages, holes and the zero page. */
export const MIGRATE_VMA_SELECT_SYSTEM = 1 << 0;
/** MIGRATE_VMA_SELECT_DEVICE_PRIVATE: collect device-private pages of `pgmapOwner`. */
export const MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 1 << 1;
/** MIGRATE_VMA_SELECT_DEVICE_COHERENT: device-coherent pages (the model has none). */
export const MIGRATE_VMA_SELECT_DEVICE_COHERENT = 1 << 2;
/**
 * MIGRATE_VMA_SELECT_COMPOUND: collect a PMD-mapped THP (or device THP), or an empty PMD of a
 * THP-eligible VMA, as one compound entry. Without it such a PMD is split and its pages move
 * one by one.
 */
export const MIGRATE_VMA_SELECT_COMPOUND = 1 << 3;
const SELECT_ALL =
  MIGRATE_VMA_SELECT_SYSTEM |
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE |
  MIGRATE_VMA_SELECT_DEVICE_COHERENT |
  MIGRATE_VMA_SELECT_COMPOUND;
/** VM_SPECIAL: mappings migrate_vma_setup() refuses. */
const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;

/**
 * One src entry (MIGRATE_PFN_*): the page (null for a hole or the zero page), whether it is
 * to migrate (MIGRATE_PFN_MIGRATE) and whether it was mapped writable (MIGRATE_PFN_WRITE).
 * `compound` (MIGRATE_PFN_COMPOUND) marks the first of 512 entries that move as one THP; unlike
 * Linux, whose other 511 entries are empty, the model lists each page of the THP.
 */
export interface MigrateSrc {
  page: Page | null;
  migrate: boolean;
  write: boolean;
  compound: boolean;
}

/**
 * One dst entry the driver fills: its new page (locked, one reference) and the WRITE flag.
 * For a compound src the driver gives either a THP (512 entries, the first `compound`) or 512
 * small pages, in which case the core splits the source first.
 */
export interface MigrateDst {
  readonly page: Page;
  readonly write: boolean;
  readonly compound?: boolean;
}

/** struct migrate_vma. */
export interface MigrateVma {
  readonly vma: Vma;
  readonly start: number;
  readonly end: number;
  /** MIGRATE_VMA_SELECT_* bits. */
  readonly flags: number;
  /** pgmap_owner: the owner of device pages to select, and of the MIGRATE invalidation. */
  readonly pgmapOwner: unknown;
  /** fault_page: the device page a CPU fault holds locked and referenced (or null). */
  readonly faultPage: Page | null;
  readonly src: MigrateSrc[];
  readonly dst: (MigrateDst | null)[];
  /** Entries collected for migration. */
  cpages: number;
}

/**
 * A struct migrate_vma for [start, end) of `vma`. The checks are migrate_vma_setup()'s:
 * EINVAL for a range outside the VMA, a VM_SPECIAL VMA, unknown select bits, or a fault page
 * that is not a locked device-private page.
 */
export function migrateVma(
  vma: Vma,
  start: number,
  end: number,
  flags: number,
  pgmapOwner: unknown,
  faultPage: Page | null = null,
): MigrateVma {
  const ok = (v: number) => Number.isSafeInteger(v) && v >= 0 && v % PAGE_SIZE === 0;
  if (!ok(start) || !ok(end) || end <= start)
    throw new Errno(
      'EINVAL',
      `migrate_vma: [${String(start)}, ${String(end)}) is not a page-aligned range`,
    );
  if (start < vma.start || end > vma.end)
    throw new Errno('EINVAL', `migrate_vma: [${hex(start)}, ${hex(end)}) is not inside ${vma}`);
  if (vma.flags & VM_SPECIAL)
    throw new Errno('EINVAL', `migrate_vma: ${vma} is VM_IO/VM_PFNMAP/VM_MIXEDMAP`);
  if (!Number.isInteger(flags) || (flags & ~SELECT_ALL) !== 0 || (flags & SELECT_ALL) === 0)
    throw new Errno('EINVAL', `migrate_vma: select flags ${String(flags)} are not valid`);
  if (faultPage !== null && (!isDevicePrivatePage(faultPage) || faultPage.kind !== 'device'))
    throw new Errno('EINVAL', 'migrate_vma: fault_page is not a device-private page');
  const n = (end - start) / PAGE_SIZE;
  return {
    vma,
    start,
    end,
    flags,
    pgmapOwner,
    // Mutant mm.devmem-fault-unlocked: the kernel before 16ce101db85d had no fault_page.
    faultPage: kernel().mutant('mm.devmem-fault-unlocked') ? null : faultPage,
    src: Array.from({ length: n }, () => ({
      page: null,
      migrate: false,
      write: false,
      compound: false,
    })),
    dst: new Array<MigrateDst | null>(n).fill(null),
    cpages: 0,
  };
}

/** The references a collected page holds besides its mappings: ours, and the fault's. */
function expectedRefs(page: Page, faultPage: Page | null): number {
  return 1 + (page === faultPage ? 1 : 0);
}

/**
 * migrate_vma_setup(): collects the pages of the range (MIGRATE invalidation with the owner,
 * each selected page locked, referenced and replaced by a migration entry under the PTL),
 * then unmaps them everywhere else and drops those that hold unexpected references. The
 * caller holds mmap_lock; src says what was collected.
 */
export function* migrateVmaSetup(args: MigrateVma): Co {
  return yield* mmPath('migrate_vma_setup', args.vma.mm, migrateVmaSetupBody(args));
}

function* migrateVmaSetupBody(args: MigrateVma): Co {
  const mm = args.vma.mm;
  if (!mm.mmapLock.isLockedByCurrent())
    throw new Errno('EINVAL', 'migrate_vma_setup: mmap_lock is not held');
  if (args.faultPage !== null && !args.faultPage.locked)
    throw new Errno('EINVAL', 'migrate_vma_setup: fault_page is not locked');
  yield* migrateVmaCollect(args);
  if (args.cpages > 0)
    args.cpages -= yield* migrateDeviceUnmap(mm.machine, args.src, args.faultPage);
}

/** Whether the VMA holds private anonymous memory (vma_is_anonymous()). */
function anonymous(vma: Vma): boolean {
  return vma.file === null && !vma.isShared;
}

/** What collection does with a huge PMD: take it whole, split it first, or leave it. */
function hugePmdPlan(args: MigrateVma, haddr: number): 'whole' | 'split' | 'skip' {
  const mm = args.vma.mm;
  const pte = mm.pte(haddr);
  const page = pte?.page ?? null;
  if (pte === undefined || page === null || !anonymous(args.vma)) return 'skip';
  if (page.kind === 'zero') return args.flags & MIGRATE_VMA_SELECT_SYSTEM ? 'split' : 'skip';
  if (haddr < args.start || haddr + PMD_SIZE > args.end) return 'split';
  let selected = true;
  for (let a = haddr; a < haddr + PMD_SIZE && selected; a += PAGE_SIZE) {
    const p = mm.pte(a);
    selected = p !== undefined && selectable(args, p) !== null && p.page!.mapcount === 1;
  }
  if (selected && args.flags & MIGRATE_VMA_SELECT_COMPOUND) return 'whole';
  return selectable(args, pte) !== null ? 'split' : 'skip';
}

/**
 * migrate_vma_collect_pmd()'s splits, done before the walk: a huge PMD the range covers in
 * part, the huge zero page, and a THP that is not collected whole (no SELECT_COMPOUND, a page
 * pinned or mapped elsewhere) become PTEs.
 */
function* splitForCollect(args: MigrateVma): Co {
  const mm = args.vma.mm;
  if (mm.hugePmds.size === 0) return;
  yield* splitPartialPmds(mm, args.start, args.end);
  for (const haddr of hugePmdsIn(mm, args.start, args.end))
    if (hugePmdPlan(args, haddr) === 'split') yield* splitHugePmd(mm, haddr);
}

/**
 * A compound entry at `haddr` (src index `i`), under the PTL: an empty PMD of a THP-eligible
 * VMA, or a huge PMD whose 512 pages are all selected and unlocked (the folio trylock). True
 * when collected; a huge PMD that cannot be is skipped whole.
 */
function collectHuge(args: MigrateVma, i: number, haddr: number): boolean {
  const mm = args.vma.mm;
  const whole = haddr + PMD_SIZE <= args.end && args.flags & MIGRATE_VMA_SELECT_COMPOUND;
  if (!mm.pmdHuge(haddr)) {
    if (!whole || !(args.flags & MIGRATE_VMA_SELECT_SYSTEM)) return false;
    if (!pmdNone(mm, haddr) || !thpEligible(args.vma, haddr)) return false;
    for (let j = 0; j < HPAGE_PMD_NR; j++) args.src[i + j]!.migrate = true;
    args.src[i]!.compound = true;
    args.cpages += HPAGE_PMD_NR;
    return true;
  }
  if (hugePmdPlan(args, haddr) !== 'whole') return true;
  for (let a = haddr; a < haddr + PMD_SIZE; a += PAGE_SIZE) {
    const page = mm.pte(a)!.page!;
    if (page.locked && page !== args.faultPage) return true;
  }
  for (let j = 0; j < HPAGE_PMD_NR; j++) collectPte(args, i + j, haddr + j * PAGE_SIZE);
  args.src[i]!.compound = true;
  return true;
}

/** Under the PTL: the page at `addr` (selected and locked) gives way to a migration entry. */
function collectPte(args: MigrateVma, i: number, addr: number): void {
  const mm = args.vma.mm;
  const pte = mm.pte(addr)!;
  const page = pte.page!;
  const src = args.src[i]!;
  if (page !== args.faultPage) page.locked = true;
  mm.machine.phys.get(page);
  if (pte.dirty) page.dirty = true;
  mm.replacePte(addr, migrationEntry(page, pte));
  migrationSites(page).push({ mm, addr });
  mm.machine.phys.put(page);
  src.page = page;
  src.migrate = true;
  src.write = pte.writable;
  args.cpages++;
}

/** migrate_vma_collect(): one walk of the range under the PTL. */
function* migrateVmaCollect(args: MigrateVma): Co {
  const { vma, start, end } = args;
  const mm = vma.mm;
  yield* splitForCollect(args);
  const range = rangeInit(mm, 'MIGRATE', start, end, { owner: args.pgmapOwner });
  yield* invalidateRangeStart(range);
  yield* mm.ptl.lock();
  let flush = false;
  for (let i = 0, addr = start; addr < end; i++, addr += PAGE_SIZE) {
    if (!anonymous(vma)) break;
    if (addr % PMD_SIZE === 0 && collectHuge(args, i, addr)) {
      flush ||= mm.pte(addr)?.kind === 'migration';
      i += HPAGE_PMD_NR - 1;
      addr += PMD_SIZE - PAGE_SIZE;
      continue;
    }
    // A THP faulted in since splitForCollect() is left whole.
    if (mm.pmdHuge(addr)) continue;
    const pte = mm.pte(addr);
    const src = args.src[i]!;
    const zero = pte?.kind === 'page' && pte.page?.kind === 'zero';
    if (pte === undefined || zero) {
      // A hole or the zero page: a new page can be inserted there (migrate_vma_insert_page()).
      if (zero && !(args.flags & MIGRATE_VMA_SELECT_SYSTEM)) continue;
      src.migrate = true;
      args.cpages++;
      continue;
    }
    const page = selectable(args, pte);
    // The fault holds its page locked already (1afaeb8293c9); any other must trylock.
    if (page === null || (page !== args.faultPage && page.locked)) continue;
    if (pte.kind === 'page') flush = true;
    collectPte(args, i, addr);
  }
  if (flush) flushTlbRange(mm, start, end);
  mm.ptl.unlock();
  yield* invalidateRangeEnd(range);
}

/** The page of `pte` if this migration selects it. */
function selectable(args: MigrateVma, pte: Pte): Page | null {
  const page = pte.page;
  if (page === null) return null;
  if (pte.kind === 'device')
    return args.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE && page.pgmap?.owner === args.pgmapOwner
      ? page
      : null;
  if (pte.kind !== 'page' || !(args.flags & MIGRATE_VMA_SELECT_SYSTEM)) return null;
  return page.kind === 'anon' && page.pins === 0 ? page : null;
}

/**
 * migrate_device_unmap(): a collected page still mapped elsewhere (shared after fork) is
 * unmapped there too (try_to_migrate(), CLEAR invalidations); one still mapped, or holding a
 * reference beyond ours and the fault's, is restored and dropped from the migration.
 */
function* migrateDeviceUnmap(
  machine: Machine,
  src: MigrateSrc[],
  faultPage: Page | null,
): Co<number> {
  let dropped = 0;
  for (const s of src) {
    const page = s.page;
    if (page === null || !s.migrate) continue;
    const where = migrationSites(page);
    if (page.mapcount > 0) yield* unmapAll(machine, page, where);
    if (page.mapcount === 0 && page.pins === 0 && page.refcount === expectedRefs(page, faultPage))
      continue;
    yield* remapAll(machine, page, page, where);
    release(machine, page, faultPage);
    s.page = null;
    s.migrate = false;
    dropped++;
  }
  return dropped;
}

/** The end of one collected page's migration: entries gone, unlocked, our reference put. */
function release(machine: Machine, page: Page, faultPage: Page | null): void {
  untrackMigration(machine, page);
  if (page !== faultPage) unlockPage(machine, page);
  machine.phys.put(page);
}

/**
 * migrate_vma_pages(): for each entry the driver gave a page: a hole gets the new page
 * inserted (under one MIGRATE invalidation with the owner, from the first hole to the end);
 * a collected page still holding only the expected references is committed. Entries that
 * fail lose their MIGRATE bit.
 */
export function* migrateVmaPages(args: MigrateVma): Co {
  const mm = args.vma.mm;
  let range: MmuNotifierRange | null = null;
  for (let i = 0, addr = args.start; addr < args.end; i++, addr += PAGE_SIZE) {
    const src = args.src[i]!;
    const dst = args.dst[i];
    if (src.compound && dst?.compound) {
      const notify = range === null && !kernel().mutant('mm.migrate-hole-no-notify');
      yield* migrateCompound(args, i, addr, notify);
      i += HPAGE_PMD_NR - 1;
      addr += PMD_SIZE - PAGE_SIZE;
      continue;
    }
    // migrate_vma_split_folio(): the driver gave small pages, so the source moves as such.
    if (src.compound && src.page !== null && dst !== null && dst !== undefined)
      yield* splitHugePmd(mm, addr, args.pgmapOwner);
    if (!src.migrate) continue;
    if (dst === null || dst === undefined) {
      src.migrate = false;
      continue;
    }
    if (src.page !== null) {
      if (!commitPage(src.page, dst.page, args.faultPage)) src.migrate = false;
      continue;
    }
    // Mutant: the hole insertion without the notifier 8315ada7f095 put around it, so a device
    // that mirrored the zero page there keeps it after the CPU entry moves to the new page.
    if (range === null && !kernel().mutant('mm.migrate-hole-no-notify')) {
      range = rangeInit(mm, 'MIGRATE', addr, args.end, { owner: args.pgmapOwner });
      yield* invalidateRangeStart(range);
    }
    if (!(yield* migrateVmaInsertPage(args.vma, addr, dst.page))) src.migrate = false;
  }
  if (range !== null) yield* invalidateRangeEnd(range);
}

/**
 * migrate_vma_pages() for a compound entry whose driver gave a THP: all 512 pages move or none
 * does (a page dropped from the collection, or one holding a new reference, fails the folio). A
 * hole gets the THP mapped by one huge PMD (migrate_vma_insert_huge_pmd_page(), under its
 * MIGRATE invalidation when `notify`); one no longer empty fails.
 */
function* migrateCompound(args: MigrateVma, i: number, haddr: number, notify: boolean): Co {
  const group = args.src.slice(i, i + HPAGE_PMD_NR);
  const fresh = args.dst.slice(i, i + HPAGE_PMD_NR).map((d) => d?.page ?? null);
  const fail = () => {
    for (const s of group) s.migrate = false;
  };
  if (group.some((s) => !s.migrate) || fresh.some((p) => p === null)) return fail();
  if (group[0]!.page !== null) {
    for (let j = 0; j < HPAGE_PMD_NR; j++)
      if (!commitPage(group[j]!.page!, fresh[j]!, args.faultPage)) return fail();
    return;
  }
  const mm = args.vma.mm;
  if (!anonymous(args.vma) || mm.unstable || !pmdNone(mm, haddr)) return fail();
  const range = rangeInit(mm, 'MIGRATE', haddr, haddr + PMD_SIZE, { owner: args.pgmapOwner });
  if (notify) yield* invalidateRangeStart(range);
  const pages = fresh as Page[];
  for (const p of pages) mm.machine.phys.get(p);
  const writable = args.vma.writable;
  const ok = yield* mapHugePmd(mm, haddr, pages, (page) => insertedEntry(page, writable));
  if (ok && pages[0]!.pgmap === null) for (const p of pages) mm.machine.phys.lru.add(p);
  if (notify) yield* invalidateRangeEnd(range);
  if (!ok) fail();
}

/** folio_migrate_mapping() for an anonymous or device page: no reference may have appeared. */
function commitPage(page: Page, fresh: Page, faultPage: Page | null): boolean {
  if (page.refcount !== expectedRefs(page, faultPage) || page.pins > 0) return false;
  fresh.dirty = page.dirty;
  return true;
}

/**
 * migrate_vma_insert_page(): maps `page` at `addr` if the entry is still empty or the zero
 * page (cleared and flushed first); a device page gets a device-private entry, writable when
 * the VMA is.
 */
function* migrateVmaInsertPage(vma: Vma, addr: number, page: Page): Co<boolean> {
  const mm = vma.mm;
  const machine = mm.machine;
  if (!anonymous(vma) || mm.unstable) return false;
  yield* mm.ptl.lock();
  try {
    const pte = mm.pte(addr);
    const zero = pte?.kind === 'page' && pte.page?.kind === 'zero';
    if (pte !== undefined && !zero) return false;
    if (zero) {
      mm.clearPte(addr);
      flushTlbRange(mm, addr, addr + PAGE_SIZE);
    }
    machine.phys.get(page);
    mm.setPte(addr, insertedEntry(page, vma.writable));
    if (page.pgmap === null) machine.phys.lru.add(page);
    return true;
  } finally {
    mm.ptl.unlock();
  }
}

/** The entry migrate_vma_insert_page() makes: device-private for a device page. */
function insertedEntry(page: Page, writable: boolean): Pte {
  const device = page.pgmap !== null;
  return {
    kind: device ? 'device' : 'page',
    page,
    swap: 0,
    pfn: 0,
    readable: true,
    writable,
    dirty: !device && writable,
    accessed: true,
  };
}

/**
 * migrate_vma_finalize(): each migration entry becomes a mapping of the new page (or of the
 * old one again, where the migration failed); pages are unlocked and the migration's
 * references dropped, which frees the old pages.
 */
export function* migrateVmaFinalize(args: MigrateVma): Co {
  yield* finalize(args.vma.mm.machine, args.src, args.dst, args.faultPage);
}

function* finalize(
  machine: Machine,
  src: readonly MigrateSrc[],
  dst: readonly (MigrateDst | null)[],
  faultPage: Page | null,
): Co {
  for (let i = 0; i < src.length; i++) {
    const s = src[i]!;
    const fresh = dst[i]?.page ?? null;
    const page = s.page;
    const moved = page !== null && s.migrate && fresh !== null;
    if (page !== null) {
      yield* remapAll(machine, page, moved ? fresh : page, migrationSites(page));
      if (page.pgmap === null && !moved) machine.phys.lru.add(page);
      release(machine, page, faultPage);
    }
    if (fresh !== null) {
      // A system page that now holds the data goes on the LRU (folio_add_lru()), so reclaim
      // can find it; a device page never does.
      if (moved && fresh.pgmap === null && fresh.mapcount > 0) machine.phys.lru.add(fresh);
      unlockPage(machine, fresh);
      machine.phys.put(fresh);
    }
  }
  machine.migrationWait.wakeUpAll();
}

/**
 * migrate_device_range(): collects device pages by pfn for eviction, whatever maps them: each
 * in use is referenced and trylocked, then unmapped from every address space (CLEAR
 * invalidations). Returns the src entries, one per page of `pages`.
 */
export function* migrateDeviceRange(machine: Machine, pages: readonly Page[]): Co<MigrateSrc[]> {
  return yield* mmPath('migrate_device_range', machine, migrateDeviceRangeBody(machine, pages));
}

function* migrateDeviceRangeBody(machine: Machine, pages: readonly Page[]): Co<MigrateSrc[]> {
  const src: MigrateSrc[] = [];
  for (const page of pages) {
    if (!(page instanceof Page) || page.pgmap === null)
      throw new Errno('EINVAL', 'migrate_device_range: not a device-private page');
    const s: MigrateSrc = { page: null, migrate: false, write: false, compound: false };
    src.push(s);
    if (page.refcount === 0 || page.kind !== 'device' || page.locked) continue;
    machine.phys.get(page);
    page.locked = true;
    s.page = page;
    s.migrate = true;
  }
  yield* migrateDeviceUnmap(machine, src, null);
  return src;
}

/** migrate_device_pages(): commits each page whose references are still as expected. */
export function migrateDevicePages(src: MigrateSrc[], dst: readonly (MigrateDst | null)[]): void {
  for (let i = 0; i < src.length; i++) {
    const s = src[i]!;
    const d = dst[i];
    if (!s.migrate || s.page === null) continue;
    if (d === null || d === undefined || !commitPage(s.page, d.page, null)) s.migrate = false;
  }
}

/** migrate_device_finalize(): as {@link migrateVmaFinalize}, for an eviction. */
export function* migrateDeviceFinalize(
  machine: Machine,
  src: MigrateSrc[],
  dst: readonly (MigrateDst | null)[],
): Co {
  yield* finalize(machine, src, dst, null);
}
