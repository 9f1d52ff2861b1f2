/**
 * mprotect(2) (mm/mprotect.c): do_mprotect_pkey() → mprotect_fixup() → change_protection().
 * The VMA flags change under mmap_lock held for write; the present entries of each VMA are
 * rewritten under the page-table lock inside one PROTECTION_VMA invalidation, and the TLB is
 * flushed over the changed entries before the lock is dropped.
 */
import { kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import {
  flagWord,
  hex,
  onlyKnownBits,
  PAGE_SIZE,
  PROT_MASK,
  VM_EXEC,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYWRITE,
  VM_READ,
  VM_WRITE,
} from './constants.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { protToVm } from './mmap.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from './mmu-notifier.ts';
import type { MmuNotifierRange } from './mmu-notifier-types.ts';
import { checkUserRange } from './munmap.ts';
import { type Pte, ptePresent } from './pte.ts';
import { flushTlbRange, tlbRevoked } from './tlb.ts';
import { flushTlbBatchedPending } from './tlb-batch.ts';
import type { Vma } from './vma.ts';
import { splitToRange } from './vma-split.ts';

const VM_ACCESS = VM_READ | VM_WRITE | VM_EXEC;

/**
 * Validates the arguments in do_mprotect_pkey()'s order. Returns the page-aligned end, or null
 * for a zero length (success without effect, as in Linux, whatever `prot` is).
 */
function checkArgs(addr: number, len: number, prot: number): number | null {
  const end = checkUserRange('mprotect', addr, len, 'ENOMEM');
  if (len === 0) return null;
  if (!onlyKnownBits(prot, PROT_MASK))
    throw new Errno('EINVAL', `mprotect: prot ${flagWord(prot)} has bits outside PROT_MASK`);
  return end;
}

/**
 * The rights a present entry gets under the new VMA flags. Read access follows VM_READ or
 * VM_WRITE (x86 cannot map write-only); write access is only ever removed here: a private
 * entry becomes writable through the write fault (COW or reuse), a shared one likewise.
 */
function entryRights(flags: number, writable: boolean): { readable: boolean; writable: boolean } {
  return {
    readable: (flags & (VM_READ | VM_WRITE)) !== 0,
    writable: writable && (flags & VM_WRITE) !== 0,
  };
}

/** Entries change_protection() rewrites: present, device-private and device-exclusive ones. */
function protectable(pte: Pte | undefined): pte is Pte {
  return pte !== undefined && (deviceHeld(pte) || ptePresent(pte));
}

/** Device-private and device-exclusive entries: their write bit only ever goes. */
function deviceHeld(pte: Pte): boolean {
  return pte.kind === 'device' || pte.kind === 'exclusive';
}

/**
 * change_protection() over [start, end) of one VMA: PROTECTION_VMA invalidation started only
 * when the range holds a present entry (change_pmd_range() starts it at the first populated
 * pmd), entries rewritten under the PTL, TLB flushed over the changed ones before the unlock,
 * and the same range object ended.
 */
function* changeProtection(vma: Vma, start: number, end: number): Co {
  const mm = vma.mm;
  // Mutant: before 3ea277194daa (v4.13) change_pte_range() did not complete a flush reclaim
  // deferred, so an entry reclaim had cleared needed no flush here, yet a CPU still held it
  // writable after mprotect() returned.
  const pending = !kernel().mutant('mm.mprotect-skips-batched-flush');
  const all = mm.addressesIn(start, end);
  const addrs = all.filter((a) => protectable(mm.pte(a)));
  if (addrs.length === 0) {
    // No entry to change, but a page table to walk: change_pte_range() still runs (at once
    // where reclaim cleared every entry: the model has no page-table pages).
    if (!pending) return;
    if (all.length === 0) return flushTlbBatchedPending(mm);
    yield* mm.ptl.lock();
    flushTlbBatchedPending(mm);
    mm.ptl.unlock();
    return;
  }
  const range: MmuNotifierRange = rangeInit(mm, 'PROTECTION_VMA', start, end);
  yield* invalidateRangeStart(range);
  yield* mm.ptl.lock();
  if (pending) flushTlbBatchedPending(mm);
  let lo = Number.POSITIVE_INFINITY;
  let hi = 0;
  for (const addr of addrs) {
    const pte = mm.pte(addr);
    if (pte === undefined || !protectable(pte)) continue;
    if (deviceHeld(pte)) {
      // change_pte_range(): a writable device-private or device-exclusive entry becomes
      // read-only, whatever the new rights (no TLB entry to flush: the CPU does not map it).
      if (pte.writable) mm.protectPte(addr, pte, true, false);
      continue;
    }
    const want = entryRights(vma.flags, pte.writable);
    if (want.readable === pte.readable && want.writable === pte.writable) continue;
    mm.protectPte(addr, pte, want.readable, want.writable);
    lo = Math.min(lo, addr);
    hi = Math.max(hi, addr + PAGE_SIZE);
  }
  if (hi > lo) flushTlbRange(mm, lo, hi);
  mm.ptl.unlock();
  yield* invalidateRangeEnd(range);
}

/**
 * mprotect(2): sets the access rights of [addr, addr + len) to `prot`. Takes mmap_lock for
 * write. Errors (nothing is changed): EINVAL for an unaligned address or unknown prot bits,
 * ENOMEM when the range goes past TASK_SIZE or has a hole (Linux finds a hole while walking
 * and keeps the changes made before it; the model checks first), EACCES when a VMA may not
 * get the new rights (no VM_MAYWRITE: a shared mapping of a read-only file). Edge VMAs are
 * split (->open on the new parts); adjacent VMAs are not merged back.
 */
export function* mprotect(mm: Mm, addr: number, len: number, prot: number): Co {
  return yield* mmPath('do_mprotect_pkey', mm, mprotectBody(mm, addr, len, prot));
}

function* mprotectBody(mm: Mm, addr: number, len: number, prot: number): Co {
  const end = checkArgs(addr, len, prot);
  if (end === null) return;
  const newAccess = protToVm(prot);
  yield* mm.mmapLock.downWrite();
  try {
    if (!mm.covered(addr, end))
      throw new Errno('ENOMEM', `mprotect: [${hex(addr)}, ${hex(end)}) is not fully mapped`);
    for (const vma of mm.vmasIn(addr, end)) {
      // mprotect_fixup(): each right asked for needs its VM_MAY* bit.
      const may =
        (vma.flags & VM_MAYREAD ? VM_READ : 0) |
        (vma.flags & VM_MAYWRITE ? VM_WRITE : 0) |
        (vma.flags & VM_MAYEXEC ? VM_EXEC : 0);
      if ((newAccess & ~may) !== 0)
        throw new Errno('EACCES', `mprotect: ${vma} may not get prot ${hex(prot)}`);
    }
    const vmas = yield* splitToRange(mm, addr, end);
    for (const vma of vmas) {
      vma.flags = (vma.flags & ~VM_ACCESS) | newAccess;
      yield* changeProtection(vma, vma.start, vma.end);
    }
    const leaves = newAccess & VM_WRITE ? 'write' : newAccess & VM_READ ? 'read' : 'none';
    tlbRevoked(mm, addr, end, 'mprotect', leaves);
  } finally {
    mm.mmapLock.upWrite();
  }
}
