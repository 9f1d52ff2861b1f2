import { mightSleep } from '../context.ts';
import { ExclusiveLock } from './exclusive-lock.ts';

/**
 * struct mutex: a sleeping lock with a tracked owner. mutex_lock() may sleep (checked),
 * locking it again from its owner is a bug (`recursive-lock`), and only the owner may unlock.
 */
export class Mutex extends ExclusiveLock {
  protected readonly kind = 'mutex';
  protected readonly atomic = false;

  protected override beforeSleepingLock(): void {
    mightSleep(`mutex_lock(${this.name})`);
  }
}
