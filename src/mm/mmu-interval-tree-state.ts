/**
 * The interval-tree half of struct mmu_notifier_subscriptions (99cb252f5e68): the sequence,
 * the active count, the tree, the deferred list and the wait queue, and the writer side
 * (mn_itree_inv_start_range / callbacks / mn_itree_inv_end). Readers and insert/remove live in
 * mmu-interval-notifier.ts.
 */

import { charge, treeWalk } from '../cost/charge.ts';
import { nonBlockEnd, nonBlockStart } from '../kernel/context.ts';
import { bug, kernel } from '../kernel/kernel.ts';
import type { SpinLock } from '../kernel/sync/spinlock.ts';
import { WaitQueue } from '../kernel/sync/wait-queue.ts';
import type { Co } from '../kernel/task.ts';
import { IntervalTree } from '../lib/interval-tree.ts';
import type { Mm } from './mm.ts';
import type { MmuIntervalNotifier } from './mmu-interval-notifier-types.ts';
import { traceCallback } from './mmu-notifier-clients.ts';
import type { MmuNotifierRange } from './mmu-notifier-types.ts';

/** The end of the whole address space for RELEASE (ULONG_MAX). */
export const ADDRESS_SPACE_END = Number.MAX_SAFE_INTEGER;

/** How invalidations find intersecting subscriptions. */
export type ItreeDispatch = 'tree' | 'linear';

export class ItreeState {
  /** invalidate_seq: starts at 2; odd while an intersecting invalidation is in its exclusive phase. */
  seq = 2;
  /** active_invalidate_ranges. */
  active = 0;
  /** mn_itree_release() calls in progress (their active count has no range start). */
  releasing = 0;
  readonly tree = new IntervalTree<MmuIntervalNotifier>();
  /** deferred_list: inserts and removes waiting for the last inv_end. */
  deferred: MmuIntervalNotifier[] = [];
  readonly wq: WaitQueue;
  readonly lock: SpinLock;
  /**
   * 'linear' checks every subscription on every invalidation, as the linked-list users did
   * before the interval tree; kept only for the benchmark comparison.
   */
  readonly dispatch: ItreeDispatch;
  private readonly all: MmuIntervalNotifier[] = [];
  /** The mm's id, for trace events. */
  private readonly mmId: number;

  constructor(lock: SpinLock, mmId: number, dispatch: ItreeDispatch) {
    this.lock = lock;
    this.dispatch = dispatch;
    this.mmId = mmId;
    this.wq = new WaitQueue(`mm${mmId}.notifier_subscriptions.wq`);
  }

  /** mn_itree_is_invalidating(): an intersecting writer is in its exclusive phase. */
  get invalidating(): boolean {
    return (this.seq & 1) === 1;
  }

  /** Subscriptions in the tree or deferred for insertion. */
  subscriptionCount(): number {
    return this.tree.size + this.deferred.filter((s) => !s.node.inTree).length;
  }

  /** Invalidations walking the tree unlocked right now: the tree must stay frozen (I1). */
  private iterating = 0;

  private frozenCheck(op: string): void {
    if (this.iterating > 0)
      bug(
        'itree-invariant',
        `interval tree ${op} while ${this.iterating} invalidation(s) walk it unlocked`,
      );
  }

  /** @internal Links a node into the tree (and the linear list). */
  treeInsert(sub: MmuIntervalNotifier): void {
    this.frozenCheck('insert');
    if ((sub.invalidateSeq & 1) === 0)
      bug('itree-invariant', `subscription sequence ${sub.invalidateSeq} is even`);
    this.tree.insertNode(sub.node);
    if (this.dispatch === 'linear') this.all.push(sub);
  }

  /** @internal Unlinks a node. */
  treeRemove(sub: MmuIntervalNotifier): void {
    this.frozenCheck('remove');
    this.tree.remove(sub.node);
    if (this.dispatch === 'linear') this.all.splice(this.all.indexOf(sub), 1);
  }

  /** Callbacks called so far (what a walk matched, for its cost). */
  private hits = 0;

  private firstHit(start: number, last: number): MmuIntervalNotifier | null {
    if (this.dispatch === 'tree') return this.tree.iterFirst(start, last)?.value ?? null;
    return this.all.find((s) => s.start <= last && s.last >= start) ?? null;
  }

  private nextHit(
    sub: MmuIntervalNotifier,
    start: number,
    last: number,
  ): MmuIntervalNotifier | null {
    if (this.dispatch === 'tree') return this.tree.iterNext(sub.node, start, last)?.value ?? null;
    for (let i = this.all.indexOf(sub) + 1; i < this.all.length; i++) {
      const s = this.all[i]!;
      if (s.start <= last && s.last >= start) return s;
    }
    return null;
  }

  /**
   * mn_itree_invalidate(): start_range (active++, odd if anything intersects), then each
   * intersecting callback without the lock while the tree is frozen. A non-blockable range
   * whose callback refuses unwinds with inv_end and returns false (-EAGAIN).
   */
  *invalidate(range: MmuNotifierRange): Co<boolean> {
    const last = range.end - 1;
    yield* this.lock.lock();
    this.active++;
    const first = this.firstHit(range.start, last);
    if (first !== null) this.seq |= 1;
    const curSeq = this.seq;
    this.check();
    this.lock.unlock();
    if (first !== null) this.iterating++;
    let ok: boolean;
    const hits = this.hits;
    try {
      ok = yield* this.callEach(first, range, last, curSeq);
    } finally {
      if (first !== null) this.iterating--;
    }
    const matched = this.hits - hits;
    charge(
      'notifier.walk',
      this.dispatch === 'tree' ? treeWalk(this.tree.size, matched) : this.all.length,
    );
    if (!ok) yield* this.invEnd();
    return ok;
  }

  /** The callbacks of every subscription intersecting [range.start, last]; false on a refusal. */
  private *callEach(
    first: MmuIntervalNotifier | null,
    range: MmuNotifierRange,
    last: number,
    curSeq: number,
  ): Co<boolean> {
    const k = kernel();
    for (let sub = first; sub !== null; sub = this.nextHit(sub, range.start, last)) {
      if (sub.removed)
        bug(
          'itree-invariant',
          'an invalidate callback runs on a subscription whose remove() has returned',
        );
      if (k.trace.on)
        k.trace.emit('itree-invalidate', {
          mm: range.mm.id,
          start: range.start,
          end: range.end,
          event: range.event,
          seq: curSeq,
          sub: sub.start,
        });
      traceCallback(range.mm, sub.ops.client, 'invalidate', range.event);
      if (!range.blockable) nonBlockStart();
      sub.running++;
      this.hits++;
      let ok: boolean;
      try {
        ok = yield* sub.ops.invalidate(sub, range, curSeq);
      } finally {
        sub.running--;
      }
      if (!range.blockable) nonBlockEnd();
      if (ok) continue;
      if (range.blockable) bug('warn', 'an interval notifier refused a blockable invalidation');
      return false;
    }
    return true;
  }

  /**
   * mn_itree_inv_end(): active--; the last one out of an odd phase makes the sequence even,
   * replays the deferred inserts and removes (in the same critical section), and wakes the
   * waiters.
   */
  *invEnd(): Co {
    yield* this.lock.lock();
    if (this.active === 0)
      bug(
        'itree-invariant',
        'mn_itree_inv_end with no active invalidation (active would go negative)',
      );
    this.active--;
    if (this.active > 0 || !this.invalidating) {
      this.check();
      this.lock.unlock();
      return;
    }
    this.seq++;
    for (const sub of this.deferred) {
      if (sub.node.inTree) this.treeRemove(sub);
      else this.treeInsert(sub);
      sub.deferred = false;
    }
    this.deferred = [];
    this.check();
    this.lock.unlock();
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('seq-invalidate', {
        mm: this.mmId,
        owner: 'interval tree',
        phase: 'end',
        seq: this.seq,
        inProgress: this.active,
      });
    this.wq.wakeUpAll();
  }

  /**
   * mn_itree_release(): at exit, one blockable RELEASE invalidation of the whole address
   * space through the normal path; subscriptions stay in the tree.
   */
  *release(mm: Mm): Co {
    const range: MmuNotifierRange = {
      mm,
      start: 0,
      end: ADDRESS_SPACE_END,
      event: 'RELEASE',
      blockable: true,
      owner: null,
      id: mm.machine.rangeId(),
    };
    this.releasing++;
    try {
      const ok = yield* this.invalidate(range);
      if (!ok) bug('warn', 'an interval notifier refused the RELEASE invalidation');
      yield* this.invEnd();
    } finally {
      this.releasing--;
    }
  }

  /** The sequence invariants (odd exactly while invalidations are active; deferred work only then), checked after every locked step. */
  check(): void {
    if (this.active < 0) bug('itree-invariant', `active_invalidate_ranges is ${this.active}`);
    if (this.invalidating && this.active === 0)
      bug('itree-invariant', `invalidate_seq ${this.seq} is odd with no active invalidation`);
    if (this.active === 0 && this.deferred.length > 0)
      bug(
        'itree-invariant',
        `${this.deferred.length} deferred updates left with no active invalidation`,
      );
  }
}
