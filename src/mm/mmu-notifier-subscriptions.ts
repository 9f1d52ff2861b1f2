import { SpinLock } from '../kernel/sync/spinlock.ts';
import type { Mm } from './mm.ts';
import { ItreeState } from './mmu-interval-tree-state.ts';
import type { MmuNotifier } from './mmu-notifier-types.ts';

/**
 * struct mmu_notifier_subscriptions: the classic list, the lock guarding it and all itree
 * state, and `has_itree`. Allocated at the first registration (with the itree state:
 * seq 2, empty tree, wait queue and deferred list), freed with the mm_struct.
 */
export class NotifierSubscriptions {
  readonly list: MmuNotifier[] = [];
  readonly lock: SpinLock;
  hasItree = false;
  /** The interval-tree state; used once `hasItree` is set. */
  readonly itree: ItreeState;

  constructor(mm: Mm) {
    this.lock = new SpinLock(
      `mm${mm.id}.notifier_subscriptions.lock`,
      'notifier_subscriptions.lock',
    );
    this.itree = new ItreeState(this.lock, mm.id, mm.machine.notifierDispatch);
  }
}
