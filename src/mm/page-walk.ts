/**
 * The hardware page walk a CPU's MMU or an IOMMU does on a TLB miss: it reads the entry
 * without any lock, and sets its accessed bit, and its dirty bit for a write, in place.
 */
import type { Mm } from './mm.ts';
import type { PageData } from './page-data.ts';
import { type Pte, ptePresent } from './pte.ts';

/** The bytes behind a present entry: the frame's, or a device frame's. */
export function frameData(mm: Mm, pte: Pte): PageData {
  if (pte.kind === 'pfn') return mm.machine.deviceMemory(pte.pfn);
  return pte.page!.data;
}

/**
 * Walks `mm`'s page table for the page at `page` (aligned): the entry when it is present and
 * allows the access, with its accessed (and, for a write, dirty) bit set; undefined when the
 * access must fault.
 */
export function pageWalk(mm: Mm, page: number, write: boolean): Pte | undefined {
  const pte = mm.pte(page);
  if (!ptePresent(pte) || !pte.readable || (write && !pte.writable)) return undefined;
  pte.accessed = true;
  if (write) {
    pte.dirty = true;
    // A write re-dirties a MADV_FREE page, which reclaim must then keep.
    if (pte.page !== null) {
      pte.page.dirty = true;
      pte.page.lazyfree = false;
    }
  }
  return pte;
}
