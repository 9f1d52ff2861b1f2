import type { Co } from '../kernel/task.ts';
import { IntervalTreeNode } from '../lib/interval-tree.ts';
import type { Mm } from './mm.ts';
import type { MnClient } from './mmu-notifier-clients.ts';
import type { MmuNotifierRange } from './mmu-notifier-types.ts';

/** struct mmu_interval_notifier_ops: the one callback. */
export interface MmuIntervalNotifierOps {
  /** The driver these ops belong to, named in traces (`mn-callback`) and coverage reports. */
  readonly client?: MnClient;
  /**
   * ->invalidate(): called for an invalidation intersecting the subscription, without the
   * subscriptions lock. Take the driver lock (trylock when `range.blockable` is false and
   * return false if it is busy), call setSeq(cur_seq), stop device use of the range, return true.
   */
  invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, curSeq: number): Co<boolean>;
}

/** struct mmu_interval_notifier: one subscription over [start, last] of an mm. */
export class MmuIntervalNotifier {
  /** The tree node (interval and back-pointer); `node.inTree` is !RB_EMPTY_NODE. */
  node: IntervalTreeNode<MmuIntervalNotifier>;
  ops: MmuIntervalNotifierOps;
  mm: Mm | null = null;
  /** invalidate_seq: always odd. */
  invalidateSeq = 1;
  /** On the deferred list (deferred_item linked). */
  deferred = false;
  /** Callbacks on this subscription running now (for the remove invariant, I7). */
  running = 0;
  /** Set when remove() returned: no callback may run afterwards. */
  removed = false;
  /** Driver data. */
  data: unknown;

  constructor(ops: MmuIntervalNotifierOps, data: unknown = null) {
    this.ops = ops;
    this.data = data;
    this.node = new IntervalTreeNode(0, 0, this);
  }

  /** First address covered. */
  get start(): number {
    return this.node.start;
  }

  /** Last address covered (inclusive). */
  get last(): number {
    return this.node.last;
  }
}
