/**
 * mremap(2) (mm/mremap.c): shrink by unmapping the tail, grow in place when the space after
 * the VMA is free, otherwise move: copy_vma() (->open on the new VMA), move_page_tables()
 * inside one UNMAP invalidation over the old range, then the old range is unmapped (->close)
 * unless MREMAP_DONTUNMAP keeps the old VMA, empty. mmap_lock is held for write throughout.
 */
import { kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import {
  flagWord,
  hex,
  MMAP_MIN_ADDR,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  onlyKnownBits,
  PAGE_SIZE,
  PMD_SIZE,
  pageAlign,
  pageAligned,
  TASK_SIZE,
  VM_DONTEXPAND,
  VM_LOCKED,
  VM_PFNMAP,
} from './constants.ts';
import type { File } from './file.ts';
import { hugePmdsIn, splitHugePmd, splitPartialPmds } from './huge-memory.ts';
import { noteMigrationEntryMove } from './migrate.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { unmappedArea } from './mmap.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from './mmu-notifier.ts';
import { doMunmap } from './munmap.ts';
import { ptePresent } from './pte.ts';
import { flushTlbRange, tlbRevoked } from './tlb.ts';
import { flushTlbBatchedPending } from './tlb-batch.ts';
import { Vma } from './vma.ts';

const MREMAP_KNOWN = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;

interface Request {
  readonly oldAddr: number;
  readonly oldLen: number;
  readonly newLen: number;
  readonly flags: number;
  readonly newAddr: number;
}

function checkLength(what: string, len: number): number {
  if (!Number.isSafeInteger(len) || len < 0)
    throw new Errno('EINVAL', `mremap: ${what} ${String(len)} is not a non-negative integer`);
  return pageAlign(len);
}

/** The argument checks of the mremap syscall and mremap_to(), before any lock is taken. */
function checkArgs(
  oldAddr: number,
  oldLen: number,
  newLen: number,
  flags: number,
  newAddr: number,
): Request {
  if (!onlyKnownBits(flags, MREMAP_KNOWN))
    throw new Errno('EINVAL', `mremap: unknown flags ${flagWord(flags)}`);
  const mayMove = (flags & MREMAP_MAYMOVE) !== 0;
  if (flags & MREMAP_FIXED && !mayMove)
    throw new Errno('EINVAL', 'mremap: MREMAP_FIXED needs MREMAP_MAYMOVE');
  if (flags & MREMAP_DONTUNMAP && (!mayMove || oldLen !== newLen))
    throw new Errno(
      'EINVAL',
      'mremap: MREMAP_DONTUNMAP needs MREMAP_MAYMOVE and equal old and new lengths',
    );
  if (!Number.isSafeInteger(oldAddr) || oldAddr < 0 || !pageAligned(oldAddr))
    throw new Errno('EINVAL', `mremap: old address ${String(oldAddr)} is not page aligned`);
  const oldA = checkLength('old length', oldLen);
  const newA = checkLength('new length', newLen);
  if (newA === 0) throw new Errno('EINVAL', 'mremap: new length is 0');
  if (oldA === 0)
    throw new Errno(
      'EINVAL',
      'mremap: old length 0 (duplicating a shared mapping) is not modelled',
    );
  if (flags & MREMAP_FIXED) {
    if (!Number.isSafeInteger(newAddr) || newAddr < 0 || !pageAligned(newAddr))
      throw new Errno('EINVAL', `mremap: new address ${String(newAddr)} is not page aligned`);
    if (newA > TASK_SIZE || newAddr > TASK_SIZE - newA)
      throw new Errno('EINVAL', `mremap: [${hex(newAddr)}, +${newA}) goes past TASK_SIZE`);
    if (oldAddr + oldA > newAddr && newAddr + newA > oldAddr)
      throw new Errno('EINVAL', 'mremap: the new range overlaps the old one');
    if (newAddr < MMAP_MIN_ADDR)
      throw new Errno('EPERM', `mremap: ${hex(newAddr)} is below mmap_min_addr`);
  }
  return { oldAddr, oldLen: oldA, newLen: newA, flags, newAddr };
}

/** vma_to_resize(): the VMA holding the whole old range, checked against the request. */
function vmaToResize(mm: Mm, r: Request): Vma {
  const vma = mm.findVma(r.oldAddr);
  if (vma === undefined) throw new Errno('EFAULT', `mremap: nothing mapped at ${hex(r.oldAddr)}`);
  if (r.oldAddr + r.oldLen > vma.end)
    throw new Errno('EFAULT', `mremap: [${hex(r.oldAddr)}, +${r.oldLen}) is not inside ${vma}`);
  if (r.flags & MREMAP_DONTUNMAP && vma.flags & (VM_DONTEXPAND | VM_PFNMAP))
    throw new Errno('EINVAL', `mremap: MREMAP_DONTUNMAP on ${vma} (VM_DONTEXPAND/VM_PFNMAP)`);
  if (r.newLen > r.oldLen && vma.flags & (VM_DONTEXPAND | VM_PFNMAP))
    throw new Errno('EFAULT', `mremap: ${vma} may not grow (VM_DONTEXPAND/VM_PFNMAP)`);
  return vma;
}

/**
 * move_page_tables() / move_ptes(): one UNMAP invalidation over the old range; with the rmap
 * locks (take_rmap_locks()) and the PTL held, each entry is cleared at its old address and set
 * at the new one (the frame keeps its reference, its reverse-map entry moves); the old range is
 * flushed from the TLBs before the PTL is dropped.
 */
function* movePageTables(
  mm: Mm,
  file: File | null,
  oldAddr: number,
  oldEnd: number,
  newAddr: number,
): Co {
  // Mutant: before eb66ae030829 (v4.20, CVE-2018-18281) move_ptes() flushed the old range
  // only after dropping the PTL and rmap locks, so reclaim or truncate could free a moved page
  // while a CPU still reached it through the old address.
  const lateFlush = kernel().mutant('mm.mremap-flush-after-unlock');
  // move_huge_pmd() moves a huge mapping whole when the destination is PMD-aligned too; any
  // other is split first (Linux inside the range, the model just before it).
  yield* splitPartialPmds(mm, oldAddr, oldEnd);
  for (const haddr of hugePmdsIn(mm, oldAddr, oldEnd))
    if ((newAddr + haddr - oldAddr) % PMD_SIZE !== 0) yield* splitHugePmd(mm, haddr);
  const range = rangeInit(mm, 'UNMAP', oldAddr, oldEnd);
  yield* invalidateRangeStart(range);
  if (file !== null) yield* file.iMmapLock.downWrite();
  yield* mm.rmapLock.downWrite();
  yield* mm.ptl.lock();
  flushTlbBatchedPending(mm);
  let flush = false;
  for (const addr of mm.addressesIn(oldAddr, oldEnd)) {
    const pte = mm.clearPte(addr);
    if (pte === undefined) continue;
    if (ptePresent(pte)) flush = true;
    const to = newAddr + (addr - oldAddr);
    mm.setPte(to, { ...pte });
    if (pte.kind === 'migration' && pte.page !== null)
      noteMigrationEntryMove(pte.page, mm, addr, to);
  }
  for (const haddr of hugePmdsIn(mm, oldAddr, oldEnd)) {
    mm.hugePmds.delete(haddr / PMD_SIZE);
    mm.hugePmds.add((newAddr + haddr - oldAddr) / PMD_SIZE);
  }
  if (flush && !lateFlush) flushTlbRange(mm, oldAddr, oldEnd);
  mm.ptl.unlock();
  mm.rmapLock.upWrite();
  file?.iMmapLock.upWrite();
  if (flush && lateFlush) {
    yield;
    flushTlbRange(mm, oldAddr, oldEnd);
  }
  yield* invalidateRangeEnd(range);
}

/**
 * move_vma(): the new VMA at [newAddr, newAddr + newLen) (copy_vma(), which calls ->open), the
 * entries of [oldAddr, oldAddr + oldLen) moved over, then the old range unmapped (->close on
 * what it removes) unless DONTUNMAP, which keeps the old VMA without its entries.
 */
function* moveVma(
  mm: Mm,
  vma: Vma,
  oldAddr: number,
  oldLen: number,
  newAddr: number,
  newLen: number,
  dontUnmap: boolean,
): Co<number> {
  return yield* mmPath(
    'move_vma',
    mm,
    moveVmaBody(mm, vma, oldAddr, oldLen, newAddr, newLen, dontUnmap),
  );
}

function* moveVmaBody(
  mm: Mm,
  vma: Vma,
  oldAddr: number,
  oldLen: number,
  newAddr: number,
  newLen: number,
  dontUnmap: boolean,
): Co<number> {
  const moved = new Vma(
    mm,
    newAddr,
    newAddr + newLen,
    vma.flags,
    vma.file,
    vma.pgoff + (oldAddr - vma.start) / PAGE_SIZE,
  );
  moved.ops = vma.ops;
  moved.privateData = vma.privateData;
  mm.insertVma(moved);
  vma.file?.mappings.add(moved);
  vma.file?.get();
  // copy_vma() calls ->open before move_page_tables() brings the entries over.
  if (moved.ops?.open !== undefined) yield* moved.ops.open(moved);
  yield* movePageTables(mm, vma.file, oldAddr, oldAddr + oldLen, newAddr);
  if (dontUnmap) vma.flags &= ~VM_LOCKED;
  else yield* doMunmap(mm, oldAddr, oldAddr + oldLen);
  return newAddr;
}

/** Grows `vma` in place when it ends at the old range's end and the space after is free. */
function expandInPlace(mm: Mm, vma: Vma, r: Request): boolean {
  if (r.oldAddr + r.oldLen !== vma.end) return false;
  const newEnd = r.oldAddr + r.newLen;
  if (newEnd > TASK_SIZE || mm.vmasIn(vma.end, newEnd).length > 0) return false;
  vma.end = newEnd;
  return true;
}

/**
 * mremap(2): resizes and/or moves the mapping at [oldAddr, oldAddr + oldLen) to `newLen`
 * bytes and returns its address. `newAddr` is only used with MREMAP_FIXED. Takes mmap_lock for
 * write. Errors (nothing is changed): EINVAL for unknown flags, FIXED or DONTUNMAP without
 * MAYMOVE, DONTUNMAP with different lengths, an unaligned address, a zero new length, a FIXED
 * target that is unaligned, past TASK_SIZE or overlapping the old range; EPERM for a FIXED
 * target below mmap_min_addr; EFAULT when the old range is not inside one VMA (or a
 * VM_DONTEXPAND/VM_PFNMAP VMA would grow); ENOMEM when growing needs a move that is not
 * allowed or finds no room. An old length of 0 (duplicating a shared mapping) is EINVAL here.
 */
export function* mremap(
  mm: Mm,
  oldAddr: number,
  oldLen: number,
  newLen: number,
  flags: number,
  newAddr = 0,
): Co<number> {
  return yield* mmPath('do_mremap', mm, mremapBody(mm, oldAddr, oldLen, newLen, flags, newAddr));
}

function* mremapBody(
  mm: Mm,
  oldAddr: number,
  oldLen: number,
  newLen: number,
  flags: number,
  newAddr: number,
): Co<number> {
  const r = checkArgs(oldAddr, oldLen, newLen, flags, newAddr);
  yield* mm.mmapLock.downWrite();
  try {
    const at = yield* mremapLocked(mm, r);
    // What the old range no longer maps (all of it after a move, the tail after a shrink) is
    // out of every TLB by now.
    const from = at === r.oldAddr ? r.oldAddr + r.newLen : r.oldAddr;
    if (from < r.oldAddr + r.oldLen) tlbRevoked(mm, from, r.oldAddr + r.oldLen, 'mremap');
    return at;
  } finally {
    mm.mmapLock.upWrite();
  }
}

/** The body of mremap(2), with mmap_lock held for write: returns the new address. */
function* mremapLocked(mm: Mm, r: Request): Co<number> {
  let vma = vmaToResize(mm, r);
  const oldEnd = r.oldAddr + r.oldLen;
  if (r.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {
    // mremap_to(): place (or clear) the target first, then trim the old range.
    const dontUnmap = (r.flags & MREMAP_DONTUNMAP) !== 0;
    let target = r.newAddr;
    if (r.flags & MREMAP_FIXED) yield* doMunmap(mm, target, target + r.newLen);
    else target = unmappedArea(mm, 0, r.newLen, 'mremap');
    let len = r.oldLen;
    if (r.oldLen > r.newLen) {
      yield* doMunmap(mm, r.oldAddr + r.newLen, oldEnd);
      len = r.newLen;
    }
    // The unmaps may have split the VMA: look it up again.
    vma = mm.findVma(r.oldAddr)!;
    return yield* moveVma(mm, vma, r.oldAddr, len, target, r.newLen, dontUnmap);
  }
  if (r.oldLen >= r.newLen) {
    if (r.oldLen > r.newLen) yield* doMunmap(mm, r.oldAddr + r.newLen, oldEnd);
    return r.oldAddr;
  }
  if (expandInPlace(mm, vma, r)) return r.oldAddr;
  if (!(r.flags & MREMAP_MAYMOVE))
    throw new Errno(
      'ENOMEM',
      `mremap: ${vma} cannot grow in place to ${r.newLen} bytes and may not move`,
    );
  const target = unmappedArea(mm, 0, r.newLen, 'mremap');
  return yield* moveVma(mm, vma, r.oldAddr, r.oldLen, target, r.newLen, false);
}
