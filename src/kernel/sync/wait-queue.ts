import { mightSleep } from '../context.ts';
import { current } from '../kernel.ts';
import type { Co, Task, Waitable } from '../task.ts';
import { deadlineAfter, WaitList } from './wait-list.ts';

/**
 * wait_queue_head_t: wait_event() sleeps until a predicate holds, re-checking it after every
 * wake-up; wake_up_all() wakes every sleeper. sleepOnce() is the bare prepare_to_wait() +
 * schedule() a hand-rolled wait uses, which misses wake-ups sent before it sleeps.
 */
export class WaitQueue implements Waitable {
  readonly name: string;
  private readonly sleepers = new WaitList();

  constructor(name: string) {
    this.name = name;
  }

  get label(): string {
    return `waitqueue ${this.name}`;
  }

  holders(): readonly Task[] {
    return [];
  }

  /** wait_event(wq, condition). */
  *waitEvent(condition: () => boolean): Co {
    yield* this.waitUntil(condition, -1);
  }

  /** wait_event_timeout(): false when `ns` of virtual time passed with the condition false. */
  *waitEventTimeout(condition: () => boolean, ns: number): Co<boolean> {
    return yield* this.waitUntil(condition, deadlineAfter(ns));
  }

  /** Sleeps until the next wake-up, whatever the state (a hand-rolled wait). */
  *sleepOnce(): Co {
    mightSleep(`schedule() on ${this.name}`);
    this.sleepers.sleep(this);
    yield;
  }

  /** wake_up_all(). */
  wakeUpAll(): void {
    this.sleepers.wakeAll();
  }

  /** wake_up(): wakes one sleeper. */
  wakeUp(): void {
    this.sleepers.wakeOne();
  }

  /** waitqueue_active(): true when someone sleeps here. */
  active(): boolean {
    return this.sleepers.length > 0;
  }

  private *waitUntil(condition: () => boolean, deadline: number): Co<boolean> {
    mightSleep(`wait_event(${this.name})`);
    yield;
    const t = current();
    while (!condition()) {
      this.sleepers.sleep(this, deadline);
      yield;
      if (t.timedOut) {
        this.sleepers.forget(t);
        return condition();
      }
    }
    return true;
  }
}
