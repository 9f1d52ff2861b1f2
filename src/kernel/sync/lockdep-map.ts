import { lockAcquired, lockAttempt, lockReleased } from '../context.ts';
import type { LockIdentity } from '../task.ts';

/**
 * A lockdep map with no lock behind it (`struct lockdep_map`, lock_map_acquire/release): a
 * name lockdep tracks so that "takes X inside the section, then waits for the section while
 * holding X" shows up as an inversion, as the MMU notifier annotations do.
 */
export class LockdepMap implements LockIdentity {
  readonly name: string;
  readonly lockClass: string;

  constructor(name: string) {
    this.name = name;
    this.lockClass = name;
  }

  /** lock_map_acquire(). */
  acquire(): void {
    lockAttempt(this, 'write', false);
    lockAcquired(this, 'write', false);
  }

  /** lock_map_release(). */
  release(): void {
    lockReleased(this, 'write');
  }

  /** lock_map_acquire() immediately followed by lock_map_release(): records the dependency. */
  touch(): void {
    this.acquire();
    this.release();
  }
}
