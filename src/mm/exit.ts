import { bug, kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { TASK_SIZE } from './constants.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { mmdrop } from './mm-refs.ts';
import { mmuNotifierRelease } from './mmu-notifier-register.ts';
import { removeVma } from './vma-split.ts';
import { zapRange } from './zap.ts';

/**
 * exit_mmap(): mmu_notifier_release() first (secondary MMUs tear down while their notifiers
 * are still linked), then one UNMAP invalidation over the whole address space under
 * mmap_lock for read, then every VMA is removed (->close) under mmap_lock for write.
 */
export function* exitMmap(mm: Mm): Co {
  return yield* mmPath('exit_mmap', mm, exitMmapBody(mm));
}

function* exitMmapBody(mm: Mm): Co {
  yield* mmuNotifierRelease(mm);
  yield* mm.mmapLock.downRead();
  try {
    yield* zapRange(mm, [...mm.vmas], 0, TASK_SIZE, 'UNMAP');
  } finally {
    mm.mmapLock.upRead();
  }
  yield* mm.mmapLock.downWrite();
  try {
    mm.exited = true;
    for (const vma of [...mm.vmas]) yield* removeVma(vma);
  } finally {
    mm.mmapLock.upWrite();
  }
}

/**
 * mmput_async(): drops a user reference without sleeping; the last one's teardown runs in a
 * worker (schedule_work() of mm->async_put_work), so a caller holding a lock exit_mmap()'s
 * notifier callbacks take cannot deadlock on itself.
 */
export function mmputAsync(mm: Mm): void {
  if (mm.users <= 0) bug('use-after-free', `mmput_async on mm${mm.id} with no users`);
  if (--mm.users > 0) return;
  kernel().spawn(`kworker/mm${mm.id}_async_put`, function* () {
    yield* exitMmap(mm);
    mmdrop(mm);
  });
}

/** mmput(): drops a user reference; the last one tears the address space down. */
export function* mmput(mm: Mm): Co {
  if (mm.users <= 0) bug('use-after-free', `mmput on mm${mm.id} with no users`);
  if (--mm.users > 0) return;
  yield* exitMmap(mm);
  mmdrop(mm);
}
