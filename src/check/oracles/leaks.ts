import { KernelBug } from '../../kernel/bug.ts';
import type { Machine } from '../../mm/machine.ts';
import type { Mm } from '../../mm/mm.ts';

/** What is still held when a world is quiescent. */
export interface LeakReport {
  /** Frames in use beyond the page caches of files. */
  readonly frames: number;
  readonly swapSlots: number;
  /** Address spaces whose mm_struct was never freed (mm_count > 0). */
  readonly mms: number;
  /** Classic or interval subscriptions still registered. */
  readonly subscriptions: number;
  /** Pages still pinned by GUP. */
  readonly pins: number;
}

/** Counts what a quiescent machine still holds that it should have given back. */
export function measureLeaks(machine: Machine): LeakReport {
  let cached = 0;
  for (const f of machine.files) cached += f.cache.size;
  let mms = 0;
  let subscriptions = 0;
  for (const mm of machine.mms) {
    if (mm.count > 0) mms++;
    subscriptions +=
      (mm.notifiers?.list.length ?? 0) + (mm.notifiers?.itree.subscriptionCount() ?? 0);
  }
  let pins = 0;
  for (const p of machine.phys.lru) pins += p.pins;
  return {
    frames: machine.phys.usedFrames - cached,
    swapSlots: machine.swap.used,
    mms,
    subscriptions,
    pins,
  };
}

/**
 * The leak oracle, for quiescence (every task finished). First, no mm_users reference is left
 * but the one each live process holds (task->mm): any other is an mmput() that never came.
 * Then, once every address space is gone, every frame, swap slot, subscription, pin and
 * mm_count reference is back. Frames of file page caches are not leaks.
 */
export function checkLeaks(machine: Machine): void {
  // Once no task is left, nothing can ever mmput(): a reference no live process accounts for
  // is a leak, and skipping the rest of the check would let the world pass as clean.
  const owned = new Map<Mm, number>();
  for (const p of machine.processes) if (p.mm !== null) owned.set(p.mm, (owned.get(p.mm) ?? 0) + 1);
  const stuck = machine.mms.filter((mm) => mm.users > (owned.get(mm) ?? 0));
  if (stuck.length > 0) {
    const which = stuck
      .map((mm) => {
        const own = owned.get(mm) ?? 0;
        return `mm${mm.id} (mm_users ${mm.users}${own > 0 ? `, ${own} held by its process` : ''})`;
      })
      .join(', ');
    throw new KernelBug(
      'leak',
      `every task finished, yet mmput() never dropped the user references of ${which}: ` +
        'each createMm() (mm_alloc()), mmget() or get_task_mm() needs its mmput()',
    );
  }
  // Live processes keep their address spaces: the rest is checked once they are gone.
  if (machine.mms.some((mm) => mm.users > 0)) return;
  const r = measureLeaks(machine);
  const leaked = Object.entries(r).filter(([, n]) => n !== 0);
  if (leaked.length > 0) {
    throw new KernelBug(
      'leak',
      `after every process exited, still held: ${leaked.map(([what, n]) => `${n} ${what}`).join(', ')}`,
    );
  }
}
