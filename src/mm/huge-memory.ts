/**
 * Transparent huge pages for private anonymous memory (mm/huge_memory.c):
 * do_huge_pmd_anonymous_page() (a 2 MiB folio, or the huge zero page on a read fault),
 * do_huge_pmd_wp_page() (an exclusive THP is made writable in place, anything else is split
 * and the fault falls back to PTEs), __split_huge_pmd() and split_huge_pmd_address().
 *
 * A PMD mapping is modelled as its 512 PTEs with the PMD marked huge (Mm.hugePmds): they map
 * the folio's pages with one kind and the same rights. Every path that would change only some
 * of them splits the PMD first, as Linux must, so the mark only ever covers a uniform set. The
 * folio's pages keep their own counts (as after split_huge_page()), so splitting a PMD needs no
 * folio split; the frames of a THP are not contiguous.
 */
import { charge } from '../cost/charge.ts';
import { kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE, VM_HUGEPAGE, VM_NOHUGEPAGE } from './constants.ts';
import type { Machine } from './machine.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from './mmu-notifier.ts';
import type { Page } from './page.ts';
import { type Pte, pageEntry } from './pte.ts';
import { flushTlbRange } from './tlb.ts';
import type { Vma } from './vma.ts';

/** The start of the PMD that holds `addr` (HPAGE_PMD_MASK). */
export function pmdAlign(addr: number): number {
  return addr - (addr % PMD_SIZE);
}

/**
 * thp_vma_allowable_order() with THP "enabled" set to madvise, and the range check of
 * do_huge_pmd_anonymous_page(): a private anonymous VMA advised MADV_HUGEPAGE (and not since
 * MADV_NOHUGEPAGE) that holds the whole PMD at `haddr`.
 */
export function thpEligible(vma: Vma, haddr: number): boolean {
  return (
    vma.isAnon &&
    vma.ops === null &&
    (vma.flags & (VM_HUGEPAGE | VM_NOHUGEPAGE)) === VM_HUGEPAGE &&
    haddr >= vma.start &&
    haddr + PMD_SIZE <= vma.end
  );
}

/** pmd_none(): no huge mapping and no PTE under the PMD at `haddr`. */
export function pmdNone(mm: Mm, haddr: number): boolean {
  return !mm.pmdHuge(haddr) && mm.pt.blockEmpty(haddr / PAGE_SIZE);
}

/**
 * vma_alloc_folio(GFP_TRANSHUGE): 512 frames, or null. The model neither reclaims nor compacts
 * for a THP: without 512 free frames the fault falls back to small pages (thp_fault_fallback).
 */
export function* allocHugeFolio(machine: Machine): Co<Page[] | null> {
  yield;
  if (machine.phys.freeFrames < HPAGE_PMD_NR) return null;
  const pages: Page[] = [];
  for (let i = 0; i < HPAGE_PMD_NR; i++) pages.push(machine.phys.alloc('anon')!);
  charge('page.alloc');
  return pages;
}

/**
 * Maps `pages` at the empty PMD `haddr` as one huge mapping (set_pmd_at()), under the PTL;
 * false (the pages' references dropped) when something was mapped there meanwhile.
 */
export function* mapHugePmd(
  mm: Mm,
  haddr: number,
  pages: readonly Page[],
  entry: (page: Page) => Pte,
): Co<boolean> {
  yield* mm.ptl.lock();
  const empty = pmdNone(mm, haddr);
  if (empty) {
    for (let i = 0; i < HPAGE_PMD_NR; i++) mm.setPte(haddr + i * PAGE_SIZE, entry(pages[i]!));
    mm.hugePmds.add(haddr / PMD_SIZE);
  }
  mm.ptl.unlock();
  if (!empty) for (const p of pages) mm.machine.phys.put(p);
  return empty;
}

/**
 * do_huge_pmd_anonymous_page(): a read fault maps the huge zero page read-only, a write fault
 * a new zeroed THP. Null when no THP could be allocated (the caller falls back to a PTE
 * fault); false when the PMD was populated meanwhile (retry).
 */
export function* doHugePmdAnonymousPage(mm: Mm, haddr: number, write: boolean): Co<boolean | null> {
  return yield* mmPath('do_huge_pmd_anonymous_page', mm, hugeAnonymousFault(mm, haddr, write));
}

function* hugeAnonymousFault(mm: Mm, haddr: number, write: boolean): Co<boolean | null> {
  const machine = mm.machine;
  const entry = (writable: boolean) => (page: Page) => pageEntry(page, writable, writable);
  if (!write) return yield* mapHugePmd(mm, haddr, machine.phys.hugeZero(), entry(false));
  const pages = yield* allocHugeFolio(machine);
  if (pages === null) return null;
  const ok = yield* mapHugePmd(mm, haddr, pages, entry(true));
  if (ok) for (const p of pages) machine.phys.lru.add(p);
  return ok;
}

/** True when every page of the huge mapping at `haddr` is a present anonymous page mapped only there. */
function exclusiveFolio(mm: Mm, haddr: number): boolean {
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const pte = mm.pte(haddr + i * PAGE_SIZE);
    const p = pte?.page;
    if (pte?.kind !== 'page' || p === null || p === undefined || p.kind !== 'anon') return false;
    if (p.mapcount !== 1 || p.refcount !== 1 || p.locked || p.pins > 0) return false;
  }
  return true;
}

/**
 * do_huge_pmd_wp_page(): a write to a read-only huge mapping. A THP mapped only here is made
 * writable in place (the whole PMD); the huge zero page, or a THP shared since fork, has its
 * PMD split and the fault runs again on PTEs (do_wp_page() copies the one page). Returns
 * whether the fault is done.
 */
export function* doHugePmdWpPage(mm: Mm, addr: number, pte: Pte): Co<boolean> {
  const haddr = pmdAlign(addr);
  if (pte.page?.kind === 'anon' && exclusiveFolio(mm, haddr)) {
    yield* mm.ptl.lock();
    const same = mm.pte(addr) === pte && mm.pmdHuge(haddr);
    if (same) {
      for (let a = haddr; a < haddr + PMD_SIZE; a += PAGE_SIZE) {
        const p = mm.pte(a)!;
        mm.protectPte(a, p, true, true).dirty = true;
        p.page!.dirty = true;
      }
    }
    mm.ptl.unlock();
    return same;
  }
  yield* splitHugePmd(mm, haddr);
  return false;
}

/**
 * __split_huge_pmd(): the huge mapping at `addr`'s PMD becomes 512 PTE mappings, inside a
 * CLEAR invalidation of the whole 2 MiB. The PMD's TLB entry is flushed (pmdp_invalidate());
 * the huge zero page's frames are replaced by the zero page (__split_huge_zero_page_pmd()),
 * the only change a device can see. Does nothing when the PMD is not huge. A migration that
 * splits the PMD of the entries it collected passes its pgmap owner: the invalidation is then
 * a MIGRATE one of that owner (its driver keeps its own table up to date).
 */
export function* splitHugePmd(mm: Mm, addr: number, migrateOwner?: unknown): Co {
  const haddr = pmdAlign(addr);
  if (!mm.pmdHuge(haddr)) return;
  yield* mmPath('__split_huge_pmd', mm, splitHugePmdBody(mm, haddr, migrateOwner));
}

function* splitHugePmdBody(mm: Mm, haddr: number, migrateOwner: unknown): Co {
  // Mutant: the split without its invalidation (the range 2ec74c3ef2d8 put around the
  // split when it removed pmdp_splitting_flush_notify()): a device that mirrored the huge
  // zero page keeps its frames after the PTEs move to the zero page.
  const notify = !kernel().mutant('mm.thp-split-no-notify');
  const range =
    migrateOwner === undefined
      ? rangeInit(mm, 'CLEAR', haddr, haddr + PMD_SIZE)
      : rangeInit(mm, 'MIGRATE', haddr, haddr + PMD_SIZE, { owner: migrateOwner });
  if (notify) yield* invalidateRangeStart(range);
  yield* mm.ptl.lock();
  if (mm.pmdHuge(haddr)) splitHugePmdLocked(mm, haddr);
  mm.ptl.unlock();
  if (notify) yield* invalidateRangeEnd(range);
}

function splitHugePmdLocked(mm: Mm, haddr: number): void {
  mm.hugePmds.delete(haddr / PMD_SIZE);
  const zero = mm.machine.phys.zeroPage;
  let present = false;
  for (let a = haddr; a < haddr + PMD_SIZE; a += PAGE_SIZE) {
    const pte = mm.pte(a);
    if (pte?.kind !== 'page') continue;
    present = true;
    if (pte.page?.kind !== 'zero' || pte.page === zero) continue;
    mm.clearPte(a);
    mm.setPte(a, { ...pte, page: zero });
  }
  if (present) flushTlbRange(mm, haddr, haddr + PMD_SIZE);
}

/**
 * split_huge_pmd_address() for each PMD that [start, end) covers only in part: what a path
 * that changes part of a range does before its walk (vma_adjust_trans_huge() at a VMA split,
 * zap_pmd_range() and change_pmd_range() on a partial PMD).
 */
export function* splitPartialPmds(mm: Mm, start: number, end: number): Co {
  if (mm.hugePmds.size === 0) return;
  if (start % PMD_SIZE !== 0) yield* splitHugePmd(mm, start);
  if (end % PMD_SIZE !== 0) yield* splitHugePmd(mm, end);
}

/** The addresses of the huge PMDs inside [start, end), in the order they were mapped. */
export function hugePmdsIn(mm: Mm, start: number, end: number): number[] {
  const out: number[] = [];
  if (mm.hugePmds.size === 0) return out;
  for (const i of mm.hugePmds)
    if (i * PMD_SIZE >= start && (i + 1) * PMD_SIZE <= end) out.push(i * PMD_SIZE);
  return out;
}

/** Forgets the huge marks of PMDs inside [start, end) (zap_huge_pmd(): the entries are going). */
export function dropHugePmds(mm: Mm, start: number, end: number): void {
  for (const haddr of hugePmdsIn(mm, start, end)) mm.hugePmds.delete(haddr / PMD_SIZE);
}

/** True when a page of the huge mapping at `haddr` is DMA-pinned (folio_maybe_dma_pinned()). */
export function hugePmdPinned(mm: Mm, haddr: number): boolean {
  for (let a = haddr; a < haddr + PMD_SIZE; a += PAGE_SIZE)
    if ((mm.pte(a)?.page?.pins ?? 0) > 0) return true;
  return false;
}
