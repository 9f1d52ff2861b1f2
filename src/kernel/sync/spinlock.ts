import { ExclusiveLock } from './exclusive-lock.ts';

/**
 * spinlock_t: holding it (and spinning for it) is atomic context, so any sleeping call made
 * while it is held is reported as `sleep-in-atomic`. Waiting spins; it does not sleep.
 */
export class SpinLock extends ExclusiveLock {
  protected readonly kind = 'spinlock';
  protected readonly atomic = true;
}
