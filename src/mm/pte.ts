import type { Page } from './page.ts';

/**
 * A page-table entry. `page` maps a frame; `swap` is a swap entry (not present); `migration`
 * is a migration entry (not present; faults wait for the migration); `pfn` maps a device frame
 * that has no struct page (VM_PFNMAP / VM_MIXEDMAP inserts); `device` is a device-private
 * entry (not present: the page lives in device memory, and a CPU fault asks its driver to
 * migrate it back); `exclusive` is a device-exclusive entry (not present: a device has atomic
 * access to the page until a CPU access restores the entry).
 */
export interface Pte {
  kind: 'page' | 'swap' | 'migration' | 'pfn' | 'device' | 'exclusive';
  /** The frame, for 'page', 'migration', 'device' and 'exclusive' entries (the old one while it migrates). */
  page: Page | null;
  /** Swap slot for 'swap' entries. */
  swap: number;
  /** Device frame number for 'pfn' entries. */
  pfn: number;
  /** User read access (false for PROT_NONE). */
  readable: boolean;
  writable: boolean;
  dirty: boolean;
  accessed: boolean;
}

/** True when the entry maps something the CPU can reach (pte_present()). */
export function ptePresent(pte: Pte | undefined): pte is Pte {
  return pte !== undefined && (pte.kind === 'page' || pte.kind === 'pfn');
}

/** The frame number a present entry maps (0 for the zero page). */
export function ptePfn(pte: Pte): number {
  return pte.kind === 'pfn' ? pte.pfn : (pte.page?.pfn ?? -1);
}

/** The allocation generation of the mapped frame (0 for device pfns). */
export function pteGen(pte: Pte): number {
  return pte.kind === 'pfn' ? 0 : (pte.page?.gen ?? 0);
}

/**
 * True when the entry names a frame someone may use through it: a present entry, or a
 * device-private or device-exclusive entry (a device uses the page in place). These are the
 * entries the oracles see as mappings.
 */
export function pteMapsFrame(pte: Pte): boolean {
  return pte.kind !== 'swap' && pte.kind !== 'migration';
}

/**
 * True when the entry holds a reverse-map entry of its frame ('page', 'device' or 'exclusive':
 * a device-exclusive page stays mapped, so reclaim and migration leave it; not the zero page).
 */
export function pteHasRmap(pte: Pte): pte is Pte & { page: NonNullable<Pte['page']> } {
  const kind = pte.kind === 'page' || pte.kind === 'device' || pte.kind === 'exclusive';
  return kind && pte.page !== null && pte.page.kind !== 'zero';
}

/** A present entry for a frame, accessed (what a fault installs). */
export function pageEntry(page: Page, writable: boolean, dirty: boolean): Pte {
  return { kind: 'page', page, swap: 0, pfn: 0, readable: true, writable, dirty, accessed: true };
}
