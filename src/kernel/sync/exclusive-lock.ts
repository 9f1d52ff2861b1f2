import { lockAcquired, lockAttempt, lockContended, lockReleased } from '../context.ts';
import { current, kernel } from '../kernel.ts';
import type { Co, LockIdentity, Task, Waitable } from '../task.ts';

/**
 * @internal What spinlock_t and struct mutex share: one owner, waiters retried on release,
 * owner checks on unlock. Subclasses say whether waiting sleeps and whether holding is atomic.
 */
export abstract class ExclusiveLock implements LockIdentity, Waitable {
  readonly name: string;
  readonly lockClass: string;
  private ownerTask: Task | null = null;
  private waiters: Task[] = [];
  protected abstract readonly kind: string;
  protected abstract readonly atomic: boolean;

  /** `name` identifies the instance in reports; `lockClass` groups instances for lockdep. */
  constructor(name: string, lockClass: string = name) {
    this.name = name;
    this.lockClass = lockClass;
  }

  get label(): string {
    return `${this.kind} ${this.name}`;
  }

  /** The owning task, or null. */
  get owner(): Task | null {
    return this.ownerTask;
  }

  holders(): readonly Task[] {
    return this.ownerTask === null ? [] : [this.ownerTask];
  }

  /** Takes the lock, waiting while another task holds it. A preemption point. */
  *lock(): Co {
    if (!this.atomic) this.beforeSleepingLock();
    yield;
    const t = current();
    lockAttempt(this, 'write', false);
    if (this.atomic) t.atomicDepth++;
    if (this.ownerTask !== null) {
      lockContended(this, 'write');
      const k = kernel();
      while (this.ownerTask !== null) {
        this.waiters.push(t);
        k.block(t, this);
        yield;
      }
    }
    this.ownerTask = t;
    lockAcquired(this, 'write', false);
  }

  /** Takes the lock if it is free; never waits. */
  tryLock(): boolean {
    if (this.ownerTask !== null) return false;
    const t = current();
    lockAttempt(this, 'write', true);
    if (this.atomic) t.atomicDepth++;
    this.ownerTask = t;
    lockAcquired(this, 'write', true);
    return true;
  }

  /** Releases the lock; the waiters retry. Unlocking a lock one does not own is a bug. */
  unlock(): void {
    const t = current();
    if (this.ownerTask !== t) {
      const rule = this.ownerTask === null ? 'unlock-not-held' : 'unlock-not-owner';
      const whose =
        this.ownerTask === null ? 'it is not held' : `it is held by ${this.ownerTask.name}`;
      kernel().bug(rule, `${t.name} unlocks ${this.label} but ${whose}`);
    }
    this.ownerTask = null;
    if (this.atomic) t.atomicDepth--;
    lockReleased(this, 'write');
    if (this.waiters.length > 0) {
      const k = kernel();
      const woken = this.waiters;
      this.waiters = [];
      for (const w of woken) k.wake(w);
    }
  }

  /** lockdep_assert_held(): a bug unless the running task owns the lock. */
  assertHeld(): void {
    if (this.ownerTask !== current())
      kernel().bug('warn', `${this.label} must be held by ${current().name}`);
  }

  /** True when any task holds the lock (spin_is_locked()/mutex_is_locked()). */
  isLocked(): boolean {
    return this.ownerTask !== null;
  }

  protected beforeSleepingLock(): void {}
}
