import type { Co } from '../kernel/task.ts';
import type { Mm } from './mm.ts';
import type { MnClient } from './mmu-notifier-clients.ts';

/** enum mmu_notifier_event: why a range is invalidated. */
export type MmuNotifyEvent =
  | 'UNMAP'
  | 'CLEAR'
  | 'PROTECTION_VMA'
  | 'PROTECTION_PAGE'
  | 'SOFT_DIRTY'
  | 'RELEASE'
  | 'MIGRATE'
  | 'EXCLUSIVE';

/** struct mmu_notifier_range: [start, end) of `mm`, the event, blockability and owner. */
export interface MmuNotifierRange {
  readonly mm: Mm;
  readonly start: number;
  readonly end: number;
  readonly event: MmuNotifyEvent;
  /** MMU_NOTIFIER_RANGE_BLOCKABLE: callbacks may sleep. */
  readonly blockable: boolean;
  /** range->owner (MIGRATE/EXCLUSIVE): lets a driver skip its own invalidations. */
  readonly owner: unknown;
  /** Pairs a start with its end in the trace. */
  readonly id: number;
}

/** -EAGAIN as a callback returns it. */
export const EAGAIN = -11;

/**
 * struct mmu_notifier_ops. Callbacks that may sleep are generators; the secondary-TLB hook is
 * a plain function because it runs under the page-table lock and must not sleep.
 */
export interface MmuNotifierOps {
  /** The driver these ops belong to, named in traces (`mn-callback`) and coverage reports. */
  readonly client?: MnClient;
  /** ->release(): the address space is going away; tear down every secondary mapping. */
  release?(sub: MmuNotifier, mm: Mm): Co;
  /** ->clear_flush_young(): test-and-clear accessed bits in [start, end), flushing. */
  clearFlushYoung?(sub: MmuNotifier, mm: Mm, start: number, end: number): Co<boolean>;
  /** ->clear_young(): the same without the secondary TLB flush. */
  clearYoung?(sub: MmuNotifier, mm: Mm, start: number, end: number): Co<boolean>;
  /** ->test_young(): peek at the accessed bit of one address. */
  testYoung?(sub: MmuNotifier, mm: Mm, addr: number): Co<boolean>;
  /** ->invalidate_range_start(): 0, or EAGAIN (only when the range is not blockable). */
  invalidateRangeStart?(sub: MmuNotifier, range: MmuNotifierRange): Co<number>;
  /** ->invalidate_range_end(). A subscriber whose start can fail must not have one. */
  invalidateRangeEnd?(sub: MmuNotifier, range: MmuNotifierRange): Co;
  /** ->arch_invalidate_secondary_tlbs(): from every CPU TLB flush, under the PTL; must not sleep. */
  archInvalidateSecondaryTlbs?(sub: MmuNotifier, mm: Mm, start: number, end: number): void;
  /** ->alloc_notifier() for mmu_notifier_get(). */
  allocNotifier?(mm: Mm): MmuNotifier;
  /** ->free_notifier(), called after a grace period by mmu_notifier_put(). */
  freeNotifier?(sub: MmuNotifier): void;
}

/** struct mmu_notifier: one classic subscriber. */
export class MmuNotifier {
  readonly ops: MmuNotifierOps;
  /** The mm it is registered on, or null. */
  mm: Mm | null = null;
  /** Reference count for mmu_notifier_get()/put(). */
  users = 0;
  /** On the subscription list (hlist_unhashed() is false). */
  hashed = false;
  /** Callbacks running now (for the lifetime checks of mmu-notifier-lifetime.ts). */
  running = 0;
  /** mmu_notifier_unregister() returned: no callback may run any more. */
  unregistered = false;
  /** ->free_notifier ran (mmu_notifier_put()): the structure is gone. */
  freed = false;
  /** Driver data. */
  data: unknown;

  constructor(ops: MmuNotifierOps, data: unknown = null) {
    this.ops = ops;
    this.data = data;
  }
}
