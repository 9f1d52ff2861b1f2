import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { hex, pageAlign, pageAligned, TASK_SIZE } from './constants.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { tlbRevoked } from './tlb.ts';
import { removeVma, splitToRange } from './vma-split.ts';
import { zapRange } from './zap.ts';

/**
 * Checks an (addr, len) pair as munmap, mprotect and madvise do: a page-aligned user address
 * and a non-negative length (EINVAL). Unless `len` is 0, a range past TASK_SIZE is `pastLimit`
 * (EINVAL for munmap, ENOMEM for mprotect), or left to the caller when it is null (madvise
 * reports the unmapped part as a hole). Returns the page-aligned end.
 */
export function checkUserRange(
  op: string,
  addr: number,
  len: number,
  pastLimit: 'EINVAL' | 'ENOMEM' | null,
): number {
  if (!Number.isSafeInteger(addr) || addr < 0 || !pageAligned(addr)) {
    throw new Errno('EINVAL', `${op}: address ${String(addr)} is not a page-aligned user address`);
  }
  if (!Number.isSafeInteger(len) || len < 0)
    throw new Errno('EINVAL', `${op}: length ${String(len)} is not a non-negative integer`);
  const end = addr + pageAlign(len);
  if (len > 0 && pastLimit !== null && end > TASK_SIZE)
    throw new Errno(pastLimit, `${op}: range [${hex(addr)}, +${len}) goes past TASK_SIZE`);
  return end;
}

/**
 * do_vmi_munmap() with mmap_lock held for write: splits the edge VMAs, detaches the VMAs in
 * [start, end), unmaps the range (one UNMAP invalidation), then removes them (->close).
 * Holes are fine, as in Linux.
 */
export function* doMunmap(mm: Mm, start: number, end: number): Co {
  if (mm.vmasIn(start, end).length === 0) return;
  yield* mmPath('do_vmi_munmap', mm, doMunmapBody(mm, start, end));
}

function* doMunmapBody(mm: Mm, start: number, end: number): Co {
  const vmas = yield* splitToRange(mm, start, end);
  for (const v of vmas) mm.removeVma(v);
  yield* zapRange(mm, vmas, start, end, 'UNMAP');
  for (const v of vmas) yield* removeVma(v);
}

/** munmap(2). A zero length is EINVAL. */
export function* munmap(mm: Mm, addr: number, len: number): Co {
  const end = checkUserRange('munmap', addr, len, 'EINVAL');
  if (len === 0) throw new Errno('EINVAL', 'munmap: length is 0');
  yield* mm.mmapLock.downWrite();
  try {
    yield* doMunmap(mm, addr, end);
    tlbRevoked(mm, addr, end, 'munmap');
  } finally {
    mm.mmapLock.upWrite();
  }
}
