import { SpinLock } from '../kernel/sync/spinlock.ts';
import type { Mm } from './mm.ts';
import type { MmuNotifier, MmuNotifierRange } from './mmu-notifier-types.ts';

/**
 * The interval-tree half of the subscriptions (mmu_interval_notifier state). The classic core
 * calls it at the points where mm/mmu_notifier.c calls the itree functions.
 */
export interface ItreeHooks {
  /** mn_itree_invalidate(): true on success, false when a non-blockable callback refused. */
  invalidate(range: MmuNotifierRange): import('../kernel/task.ts').Co<boolean>;
  /** mn_itree_inv_end(). */
  invEnd(): void;
  /** mn_itree_release(): the RELEASE invalidation of the whole address space at exit. */
  release(mm: Mm): import('../kernel/task.ts').Co;
  /** Interval subscriptions in the tree or waiting to be inserted. */
  subscriptionCount(): number;
}

/**
 * struct mmu_notifier_subscriptions: the classic list, the lock guarding it and all itree
 * state, and `has_itree`. Allocated at the first registration, freed with the mm_struct.
 */
export class NotifierSubscriptions {
  readonly list: MmuNotifier[] = [];
  readonly lock: SpinLock;
  hasItree = false;
  /** The interval-tree state, once an interval notifier was inserted. */
  itree: ItreeHooks | null = null;

  constructor(mm: Mm) {
    this.lock = new SpinLock(
      `mm${mm.id}.notifier_subscriptions.lock`,
      'notifier_subscriptions.lock',
    );
  }
}
