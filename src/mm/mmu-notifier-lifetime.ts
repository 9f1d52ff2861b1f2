/**
 * Lifetime of a classic subscriber (mm/mmu_notifier.c): mmu_notifier_unregister() returns only
 * once no callback runs (synchronize_srcu) and none can start (the subscriber is unlinked), and
 * mmu_notifier_put() frees it (->free_notifier) only after an SRCU grace period. The interval
 * notifier checks the same of its subscriptions.
 */
import { bug } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import type { MmuNotifier } from './mmu-notifier-types.ts';

/** Raises the bug of a callback about to run on a subscriber that is gone. */
export function checkSubscriberAlive(sub: MmuNotifier, callback: string): void {
  if (sub.freed)
    bug('use-after-free', `->${callback} of a classic notifier after its ->free_notifier ran`);
  if (sub.unregistered)
    bug('lifetime', `->${callback} of a classic notifier after mmu_notifier_unregister returned`);
}

/** Runs one callback of `sub`, counted in `sub.running` while it runs. */
export function* runSubscriberCallback<T>(sub: MmuNotifier, callback: string, co: Co<T>): Co<T> {
  checkSubscriberAlive(sub, callback);
  sub.running++;
  try {
    return yield* co;
  } finally {
    sub.running--;
  }
}

/** At the end of mmu_notifier_unregister(): nothing of `sub` may still run. */
export function markUnregistered(sub: MmuNotifier): void {
  if (sub.running > 0)
    bug(
      'lifetime',
      `mmu_notifier_unregister returned while ${sub.running} callback(s) of the notifier still run`,
    );
  sub.unregistered = true;
}

/** When ->free_notifier runs (after the grace period of mmu_notifier_put()). */
export function markFreed(sub: MmuNotifier): void {
  if (sub.running > 0)
    bug('use-after-free', `a classic notifier is freed while ${sub.running} callback(s) run`);
  sub.freed = true;
}
