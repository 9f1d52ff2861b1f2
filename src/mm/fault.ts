/**
 * The CPU page-fault handler (handle_mm_fault()): anonymous first touch and the zero page (or
 * a THP and the huge zero page, huge-memory.ts), file faults from the page cache, swap-in,
 * waiting on migration, COW (wp_page_copy) and write-upgrade of exclusive pages, and ->fault
 * of driver VMAs. The caller holds mmap_lock for read.
 */

import { charge } from '../cost/charge.ts';
import { kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { hex, PAGE_SIZE } from './constants.ts';
import { removeDeviceExclusiveEntry } from './device-exclusive.ts';
import {
  doHugePmdAnonymousPage,
  doHugePmdWpPage,
  pmdAlign,
  pmdNone,
  thpEligible,
} from './huge-memory.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from './mmu-notifier.ts';
import { type Page, unlockPage } from './page.ts';
import { type Pte, pageEntry } from './pte.ts';
import { flushTlbRange } from './tlb.ts';
import type { Vma } from './vma.ts';

/** A SIGSEGV-like EFAULT for an access the VMAs do not allow. */
export function segv(addr: number, why: string): Errno {
  return new Errno('EFAULT', `SIGSEGV at ${hex(addr)}: ${why}`);
}

/** A SIGBUS-like EFAULT (VM_FAULT_SIGBUS): the VMA allows the access but nothing can back it. */
export function sigbus(addr: number, why: string): Errno {
  return new Errno('EFAULT', `SIGBUS at ${hex(addr)}: ${why}`);
}

/** True for an error {@link sigbus} made: the access would have killed the task with SIGBUS. */
export function isSigbus(e: unknown): boolean {
  return e instanceof Errno && e.code === 'EFAULT' && e.message.startsWith('EFAULT: SIGBUS');
}

function oom(addr: number): Errno {
  return new Errno('ENOMEM', `VM_FAULT_OOM at ${hex(addr)}: no free frame after reclaim`);
}

/** handle_mm_fault(): resolves a fault at `addr` (mmap_lock held for read by the caller). */
export function* handleMmFault(mm: Mm, addr: number, write: boolean): Co {
  return yield* mmPath('handle_mm_fault', mm, handleMmFaultBody(mm, addr, write));
}

function* handleMmFaultBody(mm: Mm, addr: number, write: boolean): Co {
  const page = addr - (addr % PAGE_SIZE);
  const k = kernel();
  if (k.trace.on) k.trace.emit('cpu-fault', { mm: mm.id, addr: page, write });
  charge('cpu.fault');
  const vma = mm.findVma(page);
  if (vma === undefined) throw segv(addr, 'no VMA maps this address');
  if (write ? !vma.writable : !vma.readable)
    throw segv(addr, `${write ? 'write' : 'read'} not permitted by ${vma}`);
  for (let tries = 0; ; tries++) {
    if (tries > 1000) throw new Errno('EAGAIN', `fault at ${hex(addr)} kept racing`);
    if (yield* faultOnce(mm, vma, page, write)) return;
  }
}

/** One attempt; false means "raced, retry". */
function* faultOnce(mm: Mm, vma: Vma, addr: number, write: boolean): Co<boolean> {
  const pte = mm.pte(addr);
  if (pte === undefined) {
    const haddr = pmdAlign(addr);
    if (!mm.unstable && thpEligible(vma, haddr) && pmdNone(mm, haddr)) {
      const done = yield* doHugePmdAnonymousPage(mm, haddr, write);
      if (done !== null) return done;
    }
    return yield* doMissing(mm, vma, addr, write);
  }
  if (pte.kind === 'migration') {
    yield* mm.machine.migrationWait.waitEvent(() => mm.pte(addr)?.kind !== 'migration');
    return false;
  }
  if (pte.kind === 'device') return yield* doDevicePrivatePage(mm, vma, addr, pte, write);
  if (pte.kind === 'exclusive') {
    yield* removeDeviceExclusiveEntry(mm, addr, pte);
    return false;
  }
  if (pte.kind === 'swap') {
    const swap = mm.machine.swap;
    if (swap.inReclaim.has(pte.swap)) {
      yield* swap.cacheWait.waitEvent(() => !swap.inReclaim.has(pte.swap));
      return false;
    }
    return yield* doSwapPage(mm, addr, pte, write);
  }
  if (!pte.readable) pte.readable = vma.readable;
  if (write && !pte.writable) {
    if (mm.pmdHuge(addr)) return yield* doHugePmdWpPage(mm, addr, pte);
    return yield* doWpPage(mm, vma, addr, pte);
  }
  pte.accessed = true;
  if (write) pte.dirty = true;
  return true;
}

function* doMissing(mm: Mm, vma: Vma, addr: number, write: boolean): Co<boolean> {
  // check_stable_address_space(): the OOM reaper tore this address space down. Linux asks in
  // do_anonymous_page() and, for private mappings only, in finish_fault(): a shared mapping (a
  // device's, which the reaper skips anyway) still faults in.
  if (mm.unstable && !vma.isShared) throw sigbus(addr, `mm${mm.id} was reaped by the OOM killer`);
  const ops = vma.ops;
  if (ops?.fault !== undefined) {
    const r = yield* ops.fault(vma, addr, write);
    return yield* install(
      mm,
      addr,
      undefined,
      'page' in r
        ? pageEntry(r.page, write && vma.writable, write)
        : pfnEntry(r.pfn, r.writable && vma.writable),
    );
  }
  if (vma.isIoOrPfnmap) throw segv(addr, `no page behind ${vma} (VM_IO/VM_PFNMAP without ->fault)`);
  const machine = mm.machine;
  if (vma.file === null) {
    if (!write)
      return yield* install(mm, addr, undefined, pageEntry(machine.phys.zeroPage, false, false));
    const page = yield* machine.allocPage('anon');
    if (page === null) throw oom(addr);
    const ok = yield* install(mm, addr, undefined, pageEntry(page, true, true), page);
    if (ok) machine.phys.lru.add(page);
    return ok;
  }
  const index = vma.pageIndex(addr);
  if (index * PAGE_SIZE >= vma.file.size) throw sigbus(addr, `beyond the end of ${vma.file.name}`);
  const file = vma.file;
  const cached = yield* file.getPage(index);
  if (cached === null) throw oom(addr);
  // Under the PTL, as filemap's finish_fault does: a truncate that dropped the page (or moved
  // EOF below it) since it was looked up sends the fault round again, to SIGBUS.
  const current = () => file.cache.get(index) === cached && index * PAGE_SIZE < file.size;
  if (vma.isShared || !write) {
    machine.phys.get(cached);
    if (write) cached.dirty = true;
    const entry = pageEntry(cached, write && vma.isShared, write);
    return yield* install(mm, addr, undefined, entry, cached, current);
  }
  // do_cow_fault(): a private write gets its own copy of the file page.
  const copy = yield* machine.allocPage('anon');
  if (copy === null) throw oom(addr);
  copy.data.copyFrom(cached.data);
  charge('page.copy');
  const ok = yield* install(mm, addr, undefined, pageEntry(copy, true, true), copy, current);
  if (ok) machine.phys.lru.add(copy);
  return ok;
}

function pfnEntry(pfn: number, writable: boolean): Pte {
  return {
    kind: 'pfn',
    page: null,
    swap: 0,
    pfn,
    readable: true,
    writable,
    dirty: false,
    accessed: true,
  };
}

/**
 * Installs `entry` under the page-table lock if the slot still holds `expected` (pte_same());
 * otherwise drops `ref` (the reference taken for the mapping) and reports a race.
 */
function* install(
  mm: Mm,
  addr: number,
  expected: Pte | undefined,
  entry: Pte,
  ref?: Page,
  stillValid?: () => boolean,
): Co<boolean> {
  yield* mm.ptl.lock();
  if (mm.pte(addr) !== expected || (stillValid !== undefined && !stillValid())) {
    mm.ptl.unlock();
    if (ref !== undefined) mm.machine.phys.put(ref);
    return false;
  }
  mm.setPte(addr, entry);
  mm.ptl.unlock();
  return true;
}

/**
 * do_swap_page(): reads the slot into a new frame and maps it. The allocation may sleep in
 * direct reclaim; meanwhile another thread can swap the page in and free the slot, which the
 * next swap-out may reuse for another page. The kernel's swapcache_prepare() fails on such an
 * entry and the fault backs out; here the PTE must still be this swap entry (its holder of
 * the slot) when the slot is read.
 */
function* doSwapPage(mm: Mm, addr: number, pte: Pte, write: boolean): Co<boolean> {
  const machine = mm.machine;
  const page = yield* machine.allocPage('anon');
  if (page === null) throw oom(addr);
  if (mm.pte(addr) !== pte) {
    machine.phys.put(page);
    return false;
  }
  machine.swap.read(pte.swap, page.data);
  yield* mm.ptl.lock();
  if (mm.pte(addr) !== pte) {
    mm.ptl.unlock();
    machine.phys.put(page);
    return false;
  }
  machine.swap.free(pte.swap);
  mm.clearPte(addr);
  mm.setPte(addr, pageEntry(page, write, write));
  mm.ptl.unlock();
  machine.phys.lru.add(page);
  return true;
}

/**
 * do_wp_page(): a write to a present, write-protected entry. Shared mappings and exclusive
 * anonymous pages are made writable in place; anything else (the zero page, a page shared
 * after fork, a page cache page in a private mapping, a pinned or locked page) is copied: CLEAR
 * invalidation of the page, clear and flush, new entry, end, then the old page is put.
 */
function* doWpPage(mm: Mm, vma: Vma, addr: number, pte: Pte): Co<boolean> {
  const machine = mm.machine;
  const old = pte.page;
  // wp_pfn_shared(): a shared pfn mapping that may be written gets its entry made writable.
  if (pte.kind === 'pfn' && vma.isShared) {
    yield* mm.ptl.lock();
    const same = mm.pte(addr) === pte;
    if (same) mm.protectPte(addr, pte, true, true);
    mm.ptl.unlock();
    return same;
  }
  if (pte.kind === 'pfn' || old === null) throw segv(addr, 'write to a read-only device mapping');
  // wp_can_reuse_anon_folio(): a page that reclaim or migration holds locked is in the middle
  // of being copied out (its other mappings may already point at that copy): the write gets
  // its own page instead of changing the one being copied.
  const reuse =
    vma.isShared || (old.isAnon && old.mapcount === 1 && old.refcount === 1 && !old.locked);
  if (reuse) {
    yield* mm.ptl.lock();
    const same = mm.pte(addr) === pte;
    if (same) {
      mm.protectPte(addr, pte, true, true).dirty = true;
      old.dirty = true;
    }
    mm.ptl.unlock();
    return same;
  }
  const copy = yield* machine.allocPage('anon');
  if (copy === null) throw oom(addr);
  copy.data.copyFrom(old.data);
  charge('page.copy');
  const range = rangeInit(mm, 'CLEAR', addr, addr + PAGE_SIZE);
  // Mutant: the pre-2ec74c3 placement, notifying with the page-table spinlock held.
  const underPtl = kernel().mutant('mm.notifier-under-ptl');
  if (!underPtl) yield* invalidateRangeStart(range);
  yield* mm.ptl.lock();
  if (underPtl) yield* invalidateRangeStart(range);
  const same = mm.pte(addr) === pte;
  if (same) {
    mm.clearPte(addr);
    flushTlbRange(mm, addr, addr + PAGE_SIZE);
    mm.setPte(addr, pageEntry(copy, true, true));
  }
  if (underPtl) yield* invalidateRangeEnd(range);
  mm.ptl.unlock();
  if (!underPtl) yield* invalidateRangeEnd(range);
  if (!same) {
    machine.phys.put(copy);
    return false;
  }
  machine.phys.lru.add(copy);
  machine.phys.put(old);
  return true;
}

/**
 * do_swap_page() on a device-private entry: under the PTL the page is trylocked (1afaeb8293c9)
 * and referenced (16ce101db85d), then its driver's migrate_to_ram() moves it back to system
 * memory and the fault runs again. A page another migration holds locked is waited for (Linux
 * returns and the CPU faults again until it is unlocked).
 */
function* doDevicePrivatePage(
  mm: Mm,
  vma: Vma,
  addr: number,
  pte: Pte,
  write: boolean,
): Co<boolean> {
  const page = pte.page!;
  const pgmap = page.pgmap!;
  const machine = mm.machine;
  yield* mm.ptl.lock();
  if (mm.pte(addr) !== pte) {
    mm.ptl.unlock();
    return false;
  }
  if (page.locked) {
    mm.ptl.unlock();
    yield* machine.pageLockWait.waitEvent(() => !page.locked || mm.pte(addr) !== pte);
    return false;
  }
  // Mutant: before 16ce101db85d (v6.1) the fault called migrate_to_ram() holding neither the
  // page lock nor a reference, so a concurrent migration could free the page (and its driver
  // data) first.
  if (kernel().mutant('mm.devmem-fault-unlocked')) {
    mm.ptl.unlock();
    yield;
    yield* pgmap.migrateToRam({ vma, addr, page, write });
    return false;
  }
  page.locked = true;
  machine.phys.get(page);
  mm.ptl.unlock();
  try {
    yield* pgmap.migrateToRam({ vma, addr, page, write });
  } finally {
    unlockPage(machine, page);
    machine.phys.put(page);
  }
  return false;
}
