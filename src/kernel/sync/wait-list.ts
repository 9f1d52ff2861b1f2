import { current, kernel } from '../kernel.ts';
import type { Task, Waitable } from '../task.ts';

/**
 * @internal A list of sleeping tasks with the block/wake mechanics that completions, wait
 * queues and SRCU share. `deadline` (virtual ns, or -1) makes the sleep timed.
 */
export class WaitList {
  private waiters: Task[] = [];

  /** Blocks the running task on `on`; the caller yields next. */
  sleep(on: Waitable, deadline = -1): void {
    const t = current();
    this.waiters.push(t);
    kernel().block(t, on, deadline);
  }

  /** Wakes every sleeper; woken sleepers re-check their condition. */
  wakeAll(): void {
    if (this.waiters.length === 0) return;
    const k = kernel();
    const woken = this.waiters;
    this.waiters = [];
    for (const w of woken) k.wake(w);
  }

  /** Wakes the longest sleeper. */
  wakeOne(): void {
    const w = this.waiters.shift();
    if (w !== undefined) kernel().wake(w);
  }

  /** Drops a sleeper whose timed wait expired. */
  forget(t: Task): void {
    const i = this.waiters.indexOf(t);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  get length(): number {
    return this.waiters.length;
  }
}

/** Virtual-time deadline for a timeout of `ns` from the running task's time. */
export function deadlineAfter(ns: number): number {
  if (!Number.isFinite(ns) || ns < 0)
    kernel().bug('warn', `timeout of ${ns} ns: expected a finite non-negative duration`);
  return current().time + ns;
}
