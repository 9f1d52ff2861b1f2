import { kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { PAGE_SIZE, PMD_SIZE } from './constants.ts';
import { splitHugePmd } from './huge-memory.ts';
import type { Mm } from './mm.ts';
import { Vma } from './vma.ts';

/**
 * __split_vma(): cuts `vma` at `addr`; the new VMA covers [addr, end) and, like a duplicate,
 * gets ->open. Returns the upper part.
 */
export function* splitVma(vma: Vma, addr: number): Co<Vma> {
  // vma_adjust_trans_huge(): a huge PMD may not straddle two VMAs.
  if (addr % PMD_SIZE !== 0 && vma.mm.pmdHuge(addr)) yield* splitHugePmd(vma.mm, addr);
  const upper = new Vma(
    vma.mm,
    addr,
    vma.end,
    vma.flags,
    vma.file,
    vma.pgoff + (addr - vma.start) / PAGE_SIZE,
  );
  upper.ops = vma.ops;
  upper.privateData = vma.privateData;
  vma.end = addr;
  vma.mm.insertVma(upper);
  vma.file?.mappings.add(upper);
  vma.file?.get();
  if (upper.ops?.open !== undefined) yield* upper.ops.open(upper);
  return upper;
}

/**
 * Splits at `start` and `end` where they fall inside VMAs and returns the VMAs exactly
 * covering [start, end) (vma_modify()'s splitting, or the first half of do_vmi_munmap()).
 */
export function* splitToRange(mm: Mm, start: number, end: number): Co<Vma[]> {
  const first = mm.findVma(start);
  if (first !== undefined && first.start < start) yield* splitVma(first, start);
  const last = mm.findVma(end - 1);
  if (last !== undefined && last.end > end) yield* splitVma(last, end);
  return mm.vmasIn(start, end);
}

/**
 * free_pgtables()'s unlink_anon_vmas() and unlink_file_vma(), then remove_vma(): unlinks the VMA
 * from the mm (if still linked) and its file, calls ->close, frees it and drops its file
 * reference (a release that follows runs later, without the mm's locks).
 */
export function* removeVma(vma: Vma): Co {
  // The unlinks take the rmap locks for write: a reclaim or migration walker still inside the
  // VMA (holding one for read, mid-invalidation) finishes before the VMA, and at exit the mm,
  // can go.
  yield* vma.mm.rmapLock.downWrite();
  vma.mm.removeVma(vma);
  vma.mm.rmapLock.upWrite();
  const file = vma.file;
  if (file !== null) {
    yield* file.iMmapLock.downWrite();
    file.mappings.delete(vma);
    file.iMmapLock.upWrite();
  }
  if (vma.ops?.close !== undefined) yield* vma.ops.close(vma);
  const k = kernel();
  if (k.trace.on) k.trace.emit('vma-free', { mm: vma.mm.id, vma: vma.id });
  vma.file?.putDeferred();
}
