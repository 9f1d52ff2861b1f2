import type { Kernel } from '../kernel/kernel.ts';

const lists = new WeakMap<Kernel, string[]>();

/**
 * Records one line a scenario wants its user to read in the run report (what it measured or
 * saw happen, such as "pinned MR after munmap + mmap: reads the old page"). Reports print them
 * after the statistics; they are not verdicts.
 */
export function observe(k: Kernel, line: string): void {
  let list = lists.get(k);
  if (list === undefined) {
    list = [];
    lists.set(k, list);
  }
  list.push(line);
}

/** The lines recorded on `k`, in order. */
export function observations(k: Kernel): readonly string[] {
  return lists.get(k) ?? [];
}
