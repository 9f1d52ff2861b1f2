/**
 * The OOM reaper (mm/oom_kill.c, oom_reap_task_mm / __oom_reap_task_mm): frees the private
 * memory of an OOM victim before it exits, under mmap_lock taken with a trylock, with
 * non-blockable UNMAP invalidations that a secondary MMU may refuse.
 */
import { bug } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { VM_LOCKED, VM_PFNMAP } from './constants.ts';
import { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { invalidateRangeEnd, invalidateRangeStartNonblock, rangeInit } from './mmu-notifier.ts';
import { MmuGather } from './tlb.ts';
import { zapVmaRange } from './zap.ts';

/** What one reaping pass did. */
export interface OomReapResult {
  /** VMAs whose range was unmapped. */
  readonly reaped: number;
  /** VMAs left alone because a notifier refused the non-blockable start (EAGAIN). */
  readonly skipped: number;
  /** True when mmap_lock could not be taken: nothing was reaped; the reaper retries later. */
  readonly contended: boolean;
}

/**
 * oom_reap_task_mm(): mmap_read_trylock (on failure: `contended`, nothing done), then
 * __oom_reap_task_mm(): MMF_UNSTABLE is set (faults of new pages get SIGBUS), and each private
 * VMA that is neither VM_PFNMAP nor VM_LOCKED is unmapped inside a non-blockable UNMAP
 * invalidation. When the start fails with EAGAIN the VMA is skipped and, as the pairing rule
 * requires, no end is called (the core already unwound). The caller holds an mm_count
 * reference (mmgrab), as the reaper does.
 */
export function* oomReap(mm: Mm): Co<OomReapResult> {
  if (!(mm instanceof Mm)) throw new Errno('EINVAL', 'oomReap: expected an address space (Mm)');
  if (mm.count <= 0) bug('use-after-free', `oomReap on mm${mm.id} whose mm_count is ${mm.count}`);
  return yield* mmPath('oom_reap_task_mm', mm, reap(mm));
}

/** oom_reap_task_mm() proper, once the arguments are checked. */
function* reap(mm: Mm): Co<OomReapResult> {
  if (!mm.mmapLock.downReadTrylock()) return { reaped: 0, skipped: 0, contended: true };
  let reaped = 0;
  let skipped = 0;
  try {
    if (mm.exited) return { reaped, skipped, contended: false };
    mm.unstable = true;
    for (const vma of [...mm.vmas]) {
      if (vma.flags & (VM_PFNMAP | VM_LOCKED)) continue;
      if (vma.isShared) continue;
      const range = rangeInit(mm, 'UNMAP', vma.start, vma.end, { blockable: false });
      const gather = new MmuGather(mm);
      if ((yield* invalidateRangeStartNonblock(range)) !== 0) {
        gather.finish();
        skipped++;
        continue;
      }
      yield* zapVmaRange(gather, vma, range.start, range.end);
      yield* invalidateRangeEnd(range);
      gather.finish();
      reaped++;
    }
  } finally {
    mm.mmapLock.upRead();
  }
  return { reaped, skipped, contended: false };
}
