/**
 * Charging the cost table's operations to the running task's virtual clock. `charge` adds the
 * time without a scheduling point, for paths in the mm whose preemption points are fixed (so
 * exploring strategies see the same schedules with or without costs); `spend` is delay()
 * with the cost, for device work that already yields there.
 */
import { delay } from '../kernel/context.ts';
import { kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import type { CostName } from './table.ts';

/** The running task spends `name`'s time over `units` pages (or bytes), without yielding. */
export function charge(name: CostName, units = 1): void {
  const k = kernel();
  const ns = k.costs.draw(name, units);
  if (k.current !== null) k.current.time += ns;
}

/** Entries an interval-tree lookup examines: a descent (log2 of the size) plus each match. */
export function treeWalk(size: number, matches: number): number {
  return Math.ceil(Math.log2(size + 1)) + matches;
}

/** udelay() of `name`'s time over `units` pages (or bytes): the task spends it and yields. */
export function* spend(name: CostName, units = 1): Co {
  yield* delay(kernel().costs.draw(name, units));
}
