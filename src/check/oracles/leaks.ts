import { KernelBug } from '../../kernel/bug.ts';
import type { Machine } from '../../mm/machine.ts';

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
 * The leak oracle: once every process has exited (every mm has mm_users 0), every frame, swap
 * slot, subscription, pin and mm reference is back. Frames of file page caches are not leaks.
 */
export function checkLeaks(machine: Machine): void {
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
