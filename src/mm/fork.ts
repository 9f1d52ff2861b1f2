/**
 * fork()'s half of the mm (dup_mmap / copy_page_range): the child gets a copy of every VMA but
 * VM_DONTCOPY ones, ->open runs on each copy after its entries, and the page tables are copied where the child
 * could not fault the pages back in: COW mappings holding anonymous memory (write-protected in
 * both, inside one PROTECTION_PAGE invalidation of the parent range) and VM_PFNMAP/VM_MIXEDMAP
 * mappings. Shared mappings are left to fault from the page cache.
 */
import { charge } from '../cost/charge.ts';
import { bug, kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { PMD_SIZE, VM_DONTCOPY, VM_LOCKED, VM_MIXEDMAP, VM_PFNMAP } from './constants.ts';
import { restoreExclusivePte } from './device-exclusive.ts';
import { mmput } from './exit.ts';
import { hugePmdPinned, hugePmdsIn, splitHugePmd } from './huge-memory.ts';
import type { Machine } from './machine.ts';
import { noteMigrationEntryCopy } from './migrate.ts';
import { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from './mmu-notifier.ts';
import type { Page } from './page.ts';
import type { Pte } from './pte.ts';
import { flushTlbRange } from './tlb.ts';
import { Vma } from './vma.ts';

/**
 * fork() for the address space (dup_mm → dup_mmap): takes the parent's mmap_lock for write and
 * the child's (nested), copies the VMAs and the page tables that need copying (->open on each
 * copy once its entries are in place, as dup_mmap() does), and returns the child with mm_users 1.
 * On failure (no memory for the copy of a pinned page) the half-built child is torn down and
 * the parent is as it was, except for COW write protection already applied (harmless: the
 * next write fault restores it).
 */
export function* fork(mm: Mm): Co<Mm> {
  if (!(mm instanceof Mm)) throw new Errno('EINVAL', 'fork: expected an address space (Mm)');
  if (mm.exited || mm.users <= 0)
    throw new Errno('EINVAL', `fork: mm${mm.id} has exited (mm_users ${mm.users})`);
  return yield* mmPath('dup_mmap', mm, dupMmap(mm));
}

/** dup_mmap() proper, once the arguments are checked. */
function* dupMmap(mm: Mm): Co<Mm> {
  yield* mm.mmapLock.downWrite();
  const child = mm.machine.createMm();
  let parentLocked = true;
  let childLocked = false;
  try {
    // mmap_write_lock_nested(mm, SINGLE_DEPTH_NESTING): another instance of the same class.
    yield* child.mmapLock.downWrite();
    childLocked = true;
    if (mm.exited) throw new Errno('EINVAL', `fork: mm${mm.id} exited meanwhile`);
    for (const src of [...mm.vmas]) {
      if (src.flags & VM_DONTCOPY) continue;
      const dst = new Vma(child, src.start, src.end, src.flags & ~VM_LOCKED, src.file, src.pgoff);
      dst.ops = src.ops;
      dst.privateData = src.privateData;
      child.insertVma(dst);
      src.file?.mappings.add(dst);
      src.file?.get();
      // dup_mmap(): the entries are copied first, then ->open sees (and may zap) them.
      if (needsCopy(src)) yield* copyPageRange(dst, src);
      if (dst.ops?.open !== undefined) yield* dst.ops.open(dst);
    }
    child.mmapLock.upWrite();
    childLocked = false;
    mm.mmapLock.upWrite();
    parentLocked = false;
    return child;
  } catch (e) {
    if (childLocked) child.mmapLock.upWrite();
    if (parentLocked) mm.mmapLock.upWrite();
    // copy_mm() failure: mmput() of the half-built child closes what was opened.
    yield* mmput(child);
    throw e;
  }
}

/**
 * vma_needs_copy(): entries a fault could not rebuild. PFN maps always; private mappings
 * once they hold anonymous memory (an anon_vma exists): anonymous pages, swap entries, or
 * migration entries of anonymous pages.
 */
function needsCopy(vma: Vma): boolean {
  if (vma.flags & (VM_PFNMAP | VM_MIXEDMAP)) return true;
  if (vma.isShared) return false;
  const mm = vma.mm;
  for (const addr of mm.addressesIn(vma.start, vma.end)) {
    const pte = mm.pte(addr)!;
    if (pte.kind === 'swap' || pte.kind === 'device' || pte.kind === 'exclusive') return true;
    if ((pte.kind === 'page' || pte.kind === 'migration') && pte.page?.isAnon) return true;
  }
  return false;
}

/** Anonymous pages of `vma` that are DMA-pinned: fork copies them at once for the child. */
function pinnedAnonPages(vma: Vma): number {
  const mm = vma.mm;
  let n = 0;
  for (const addr of mm.addressesIn(vma.start, vma.end)) {
    const pte = mm.pte(addr)!;
    if (pte.kind === 'page' && pte.page !== null && pte.page.isAnon && pte.page.pins > 0) n++;
  }
  return n;
}

/**
 * copy_page_range() for one VMA. For a COW mapping: one PROTECTION_PAGE invalidation over the
 * parent VMA, and under both page-table locks (parent, then child) each writable entry is
 * write-protected in the parent and mapped read-only in the child; a pinned anonymous page is
 * copied for the child instead (folio_needs_cow_for_dma(): the pin must keep seeing the
 * parent's writes). Swap entries gain a reference; migration and device-private entries are
 * copied (made read-only on both sides); the zero page and device pfns are shared as they are.
 */
function* copyPageRange(dst: Vma, src: Vma): Co {
  const parent = src.mm;
  const child = dst.mm;
  const machine = parent.machine;
  const cow = src.isCow;
  // copy_huge_pmd(): a THP with a DMA-pinned page is split (-EAGAIN), so its pages are copied
  // one by one below; any other huge mapping is shared write-protected as it is.
  if (cow)
    for (const haddr of hugePmdsIn(parent, src.start, src.end))
      if (hugePmdPinned(parent, haddr)) yield* splitHugePmd(parent, haddr);
  // Pages for the pinned anonymous pages, allocated before any lock (may reclaim).
  const spare: Page[] = [];
  if (cow && machine.earlyCowPinned) {
    for (let n = pinnedAnonPages(src); n > 0; n--) {
      const p = yield* machine.allocPage('anon');
      if (p === null) {
        for (const q of spare) machine.phys.put(q);
        throw new Errno('ENOMEM', `fork: no frame to copy a pinned page of ${src}`);
      }
      spare.push(p);
    }
  }
  const range = cow ? rangeInit(parent, 'PROTECTION_PAGE', src.start, src.end) : null;
  if (range !== null) yield* invalidateRangeStart(range);
  yield* parent.ptl.lock();
  yield* child.ptl.lock();
  for (const addr of parent.addressesIn(src.start, src.end)) {
    const pte = parent.pte(addr)!;
    copyOne(machine, parent, child, addr, pte, cow, src.isShared, spare);
  }
  for (const haddr of hugePmdsIn(parent, src.start, src.end)) child.hugePmds.add(haddr / PMD_SIZE);
  if (cow) flushTlbRange(parent, src.start, src.end);
  child.ptl.unlock();
  parent.ptl.unlock();
  if (range !== null) {
    // Mutant: the walk's cursor, advanced to the end, is passed as the end's start: the
    // accidental change the mmun_start/mmun_end locals of 2ec74c3ef2d8 were made to prevent.
    const mismatch = kernel().mutant('mm.fork-end-range-mismatch');
    yield* invalidateRangeEnd(mismatch ? { ...range, start: src.end } : range);
  }
  for (const p of spare) machine.phys.put(p);
}

/** copy_pte_range() for one entry (both page-table locks held). */
function copyOne(
  machine: Machine,
  parent: Mm,
  child: Mm,
  addr: number,
  pte: Pte,
  cow: boolean,
  shared: boolean,
  spare: Page[],
): void {
  switch (pte.kind) {
    case 'pfn':
      child.setPte(addr, { ...pte });
      return;
    case 'swap':
      machine.swap.dup(pte.swap);
      child.setPte(addr, { ...pte });
      return;
    case 'migration':
      // A writable migration entry becomes a read-only one on both sides.
      if (cow) pte.writable = false;
      child.setPte(addr, { ...pte });
      if (pte.page !== null) noteMigrationEntryCopy(pte.page, child, addr);
      return;
    case 'device':
      // copy_nonpresent_pte(): the child shares the device page; in a COW mapping a writable
      // entry becomes read-only on both sides, so the next write migrates it back and copies.
      machine.phys.get(pte.page!);
      if (cow && pte.writable) parent.protectPte(addr, pte, true, false);
      child.setPte(addr, { ...pte, writable: cow ? false : pte.writable });
      return;
    case 'exclusive':
      // Mutant: the entry is copied to the child as a present one and the parent keeps it, so
      // the parent's next access restores a writable entry to a page the child maps (COW
      // broken). copy_nonpresent_pte() restores the parent's entry and copies it as present,
      // since b756a3b5e7ea (v5.14) introduced the entries.
      if (kernel().mutant('mm.fork-copies-exclusive')) {
        machine.phys.get(pte.page!);
        child.setPte(addr, { ...pte, kind: 'page', writable: false, accessed: false });
        return;
      }
      restoreExclusivePte(parent, addr, pte);
      pte = parent.pte(addr)!;
      break;
    case 'page':
      break;
    default:
      bug('warn', `fork: unknown page-table entry kind ${String((pte as Pte).kind)}`);
  }
  const page = pte.page!;
  if (page.kind === 'zero') {
    child.setPte(addr, { ...pte, accessed: false });
    return;
  }
  if (cow && page.isAnon && page.pins > 0) {
    const copy = spare.pop();
    if (copy !== undefined) {
      // copy_present_page(): the child gets its own copy; the parent keeps its writable entry.
      copy.data.copyFrom(page.data);
      charge('page.copy');
      copy.dirty = true;
      child.setPte(addr, { ...pte, page: copy, accessed: false, dirty: true });
      machine.phys.lru.add(copy);
      return;
    }
  }
  if (cow && pte.writable) parent.protectPte(addr, pte, pte.readable, false);
  if (pte.dirty) page.dirty = true;
  machine.phys.get(page);
  child.setPte(addr, {
    ...pte,
    writable: cow ? false : pte.writable,
    // A shared mapping's child entry starts clean; a COW one keeps the dirty bit.
    dirty: shared ? false : pte.dirty,
    accessed: false,
  });
}
