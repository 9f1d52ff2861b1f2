import { join, mightSleep } from '../context.ts';
import { current, kernel } from '../kernel.ts';
import type { Co, Task, Waitable } from '../task.ts';
import { WaitList } from './wait-list.ts';

/**
 * struct srcu_struct: sleepable RCU. Readers never block; synchronize_srcu() waits for every
 * reader that entered before it (not for later ones); call_srcu() runs a callback after a
 * grace period, in a task of its own as the SRCU workqueue would.
 */
export class Srcu implements Waitable {
  readonly name: string;
  private nextCookie = 1;
  private readonly readers = new Map<number, Task>();
  private readonly sleepers = new WaitList();
  private callbacks: Task[] = [];

  constructor(name: string) {
    this.name = name;
  }

  get label(): string {
    return `srcu ${this.name} grace period`;
  }

  holders(): readonly Task[] {
    return [...this.readers.values()];
  }

  /** srcu_read_lock(): enters a read section; returns the cookie srcu_read_unlock() takes. */
  readLock(): number {
    const t = current();
    const cookie = this.nextCookie++;
    this.readers.set(cookie, t);
    t.srcuDepth++;
    const k = kernel();
    if (k.trace.on) k.trace.emit('lock-acquire', { lock: this.name, mode: 'read', trylock: false });
    return cookie;
  }

  /** srcu_read_unlock(). A cookie not open, or opened by another task, is a bug. */
  readUnlock(cookie: number): void {
    const t = current();
    const owner = this.readers.get(cookie);
    const k = kernel();
    if (owner !== t) {
      const why =
        owner === undefined ? 'no such read section is open' : `it was opened by ${owner.name}`;
      k.bug(
        'unlock-not-held',
        `${t.name} calls srcu_read_unlock(${this.name}, ${cookie}) but ${why}`,
      );
    }
    this.readers.delete(cookie);
    t.srcuDepth--;
    if (k.trace.on) k.trace.emit('lock-release', { lock: this.name, mode: 'read' });
    this.sleepers.wakeAll();
  }

  /** synchronize_srcu(): returns once every reader that entered before the call has left. */
  *synchronize(): Co {
    mightSleep(`synchronize_srcu(${this.name})`);
    yield;
    const horizon = this.nextCookie;
    while (this.hasReaderBefore(horizon)) {
      this.sleepers.sleep(this);
      yield;
    }
  }

  /** call_srcu(): runs `callback` (which must not sleep) after a grace period. */
  callSrcu(callback: () => void): void {
    const self = this;
    const task = kernel().spawn(`call_srcu(${this.name})`, function* () {
      yield* self.synchronize();
      callback();
    });
    this.callbacks.push(task);
  }

  /** srcu_barrier(): waits for every callback queued so far. */
  *barrier(): Co {
    const pending = this.callbacks;
    this.callbacks = [];
    for (const t of pending) yield* join(t);
  }

  /** Readers inside the domain now (for checks and tests). */
  get activeReaders(): number {
    return this.readers.size;
  }

  private hasReaderBefore(horizon: number): boolean {
    for (const cookie of this.readers.keys()) if (cookie < horizon) return true;
    return false;
  }
}
