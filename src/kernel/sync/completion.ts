import { mightSleep } from '../context.ts';
import { current, kernel } from '../kernel.ts';
import type { Co, Task, Waitable } from '../task.ts';
import { deadlineAfter, WaitList } from './wait-list.ts';

/**
 * struct completion: complete() lets one waiter through, complete_all() all of them for good,
 * reinit_completion() starts over. free() models kfree() of the structure holding it: any use
 * afterwards is reported as `use-after-free`.
 */
export class Completion implements Waitable {
  readonly name: string;
  private done = 0;
  private freed = false;
  private readonly sleepers = new WaitList();

  constructor(name: string) {
    this.name = name;
  }

  get label(): string {
    return `completion ${this.name}`;
  }

  holders(): readonly Task[] {
    return [];
  }

  /** complete(): one waiter (present or future) may pass. */
  complete(): void {
    this.check('complete');
    if (this.done !== Number.POSITIVE_INFINITY) this.done++;
    this.sleepers.wakeAll();
  }

  /** complete_all(): every waiter passes until reinit. */
  completeAll(): void {
    this.check('complete_all');
    this.done = Number.POSITIVE_INFINITY;
    this.sleepers.wakeAll();
  }

  /** reinit_completion(). */
  reinit(): void {
    this.check('reinit_completion');
    this.done = 0;
  }

  /** completion_done(): true when a wait would not sleep. */
  isDone(): boolean {
    this.check('completion_done');
    return this.done > 0;
  }

  /** try_wait_for_completion(): consumes a completion if one is there, never sleeps. */
  tryWait(): boolean {
    this.check('try_wait_for_completion');
    if (this.done === 0) return false;
    this.consume();
    return true;
  }

  /** wait_for_completion(). */
  *wait(): Co {
    yield* this.waitUntil(-1);
  }

  /** wait_for_completion_timeout(): false when `ns` of virtual time passed first. */
  *waitTimeout(ns: number): Co<boolean> {
    return yield* this.waitUntil(deadlineAfter(ns));
  }

  /** Marks the structure freed; later use is a bug. */
  free(): void {
    this.check('free');
    if (this.sleepers.length > 0)
      kernel().bug('use-after-free', `${this.label} freed with ${this.sleepers.length} waiter(s)`);
    this.freed = true;
  }

  private *waitUntil(deadline: number): Co<boolean> {
    this.check('wait_for_completion');
    mightSleep(`wait_for_completion(${this.name})`);
    yield;
    const t = current();
    while (this.done === 0) {
      this.check('wait_for_completion');
      this.sleepers.sleep(this, deadline);
      yield;
      if (t.timedOut) {
        this.sleepers.forget(t);
        return false;
      }
    }
    this.consume();
    return true;
  }

  private consume(): void {
    if (this.done !== Number.POSITIVE_INFINITY) this.done--;
  }

  private check(op: string): void {
    if (this.freed) kernel().bug('use-after-free', `${op} on ${this.label} after it was freed`);
  }
}
