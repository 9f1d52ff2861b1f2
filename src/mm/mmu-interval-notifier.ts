/**
 * The interval-tree MMU notifier API (mmu_interval_notifier_insert / remove / read_begin /
 * read_retry / check_retry / set_seq) of mm/mmu_notifier.c, as commit 99cb252f5e68 (v5.5)
 * introduced it.
 */

import { mightSleep } from '../kernel/context.ts';
import { bug, kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { IntervalTreeNode } from '../lib/interval-tree.ts';
import { hex } from './constants.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { mmdrop, mmgrab } from './mm-refs.ts';
import type { MmuIntervalNotifier, MmuIntervalNotifierOps } from './mmu-interval-notifier-types.ts';
import type { ItreeState } from './mmu-interval-tree-state.ts';
import { invalidateStartMap } from './mmu-notifier.ts';
import { registerLocked } from './mmu-notifier-register.ts';

function itreeOf(sub: MmuIntervalNotifier): ItreeState {
  const subs = sub.mm?.notifiers;
  if (subs === null || subs === undefined) bug('warn', 'interval notifier used while not inserted');
  return subs.itree;
}

function checkInterval(start: number, length: number): number {
  if (!Number.isSafeInteger(start) || start < 0)
    throw new Errno('EINVAL', `interval start ${String(start)} is not a non-negative integer`);
  if (!Number.isSafeInteger(length) || length < 0)
    throw new Errno('EINVAL', `interval length ${String(length)} is not a non-negative integer`);
  if (length === 0) throw new Errno('EOVERFLOW', 'interval length is 0');
  if (length - 1 > Number.MAX_SAFE_INTEGER - start) {
    throw new Errno('EOVERFLOW', `interval [${start}, +${length}) overflows`);
  }
  return start + length - 1;
}

/** __mmu_interval_notifier_insert(): the locked step with the three cases of §2.6. */
function* insertInternal(
  sub: MmuIntervalNotifier,
  mm: Mm,
  start: number,
  last: number,
  ops: MmuIntervalNotifierOps,
): Co {
  if (sub.mm !== null) throw new Errno('EINVAL', 'interval notifier is already inserted');
  sub.ops = ops;
  sub.node = new IntervalTreeNode(start, last, sub);
  sub.removed = false;
  sub.mm = mm;
  mmgrab(mm);
  const t = mm.notifiers!.itree;
  yield* t.lock.lock();
  const idleRule = kernel().mutant('itree.insert-idle-rule');
  if (t.active > 0 && idleRule) {
    // Mutant N1: insert as if no invalidation were in flight.
    sub.invalidateSeq = t.seq - 1;
    t.treeInsert(sub);
  } else if (t.active > 0) {
    if (t.invalidating) {
      sub.deferred = true;
      t.deferred.push(sub);
    } else {
      // An unknown in-flight range may cover the new interval: make readers wait it out.
      t.seq |= 1;
      t.treeInsert(sub);
    }
    sub.invalidateSeq = t.seq;
  } else {
    sub.invalidateSeq = t.seq - 1;
    t.treeInsert(sub);
  }
  t.check();
  t.lock.unlock();
}

/**
 * mmu_interval_notifier_insert(): subscribes `sub` to invalidations of [start, start+length)
 * of `mm`, switching the mm to interval-tree mode first if needed (takes mmap_lock for write
 * then). The caller holds an mm_users reference. EOVERFLOW for a zero or overflowing length,
 * EINVAL for a dead mm.
 */
export function* mmuIntervalNotifierInsert(
  sub: MmuIntervalNotifier,
  mm: Mm,
  start: number,
  length: number,
  ops: MmuIntervalNotifierOps,
): Co {
  return yield* mmPath(
    'mmu_interval_notifier_insert',
    mm,
    mmuIntervalNotifierInsertBody(sub, mm, start, length, ops),
  );
}

function* mmuIntervalNotifierInsertBody(
  sub: MmuIntervalNotifier,
  mm: Mm,
  start: number,
  length: number,
  ops: MmuIntervalNotifierOps,
): Co {
  const last = checkInterval(start, length);
  if (mm.users <= 0) throw new Errno('EINVAL', `mm${mm.id} has no users`);
  if (!mm.notifiers?.hasItree) {
    yield* mm.mmapLock.downWrite();
    try {
      if (!mm.notifiers?.hasItree) yield* registerLocked(null, mm);
    } finally {
      mm.mmapLock.upWrite();
    }
  }
  yield* insertInternal(sub, mm, start, last, ops);
}

/** mmu_interval_notifier_insert_locked(): the same with mmap_lock already held for write. */
export function* mmuIntervalNotifierInsertLocked(
  sub: MmuIntervalNotifier,
  mm: Mm,
  start: number,
  length: number,
  ops: MmuIntervalNotifierOps,
): Co {
  return yield* mmPath(
    'mmu_interval_notifier_insert_locked',
    mm,
    mmuIntervalNotifierInsertLockedBody(sub, mm, start, length, ops),
  );
}

function* mmuIntervalNotifierInsertLockedBody(
  sub: MmuIntervalNotifier,
  mm: Mm,
  start: number,
  length: number,
  ops: MmuIntervalNotifierOps,
): Co {
  const last = checkInterval(start, length);
  if (!mm.mmapLock.isWriteLockedByCurrent())
    bug('warn', 'mmu_interval_notifier_insert_locked without mmap_lock held for write');
  if (mm.users <= 0) throw new Errno('EINVAL', `mm${mm.id} has no users`);
  if (!mm.notifiers?.hasItree) yield* registerLocked(null, mm);
  yield* insertInternal(sub, mm, start, last, ops);
}

/**
 * mmu_interval_notifier_remove(): unsubscribes; if an invalidation is in its exclusive phase
 * the removal is deferred and this waits until the sequence moves. Afterwards no callback for
 * `sub` runs or will run. Must not be called from a callback (lockdep reports it).
 */
export function* mmuIntervalNotifierRemove(sub: MmuIntervalNotifier): Co {
  mightSleep('mmu_interval_notifier_remove');
  const mm = sub.mm;
  if (mm === null) throw new Errno('EINVAL', 'interval notifier is not inserted');
  yield* mmPath('mmu_interval_notifier_remove', mm, remove(sub, mm));
}

function* remove(sub: MmuIntervalNotifier, mm: Mm): Co {
  const t = itreeOf(sub);
  let wait = -1;
  yield* t.lock.lock();
  if (t.invalidating) {
    if (!sub.node.inTree) {
      // The insert itself is still deferred: cancel it, nothing to wait for.
      t.deferred.splice(t.deferred.indexOf(sub), 1);
      sub.deferred = false;
    } else {
      sub.deferred = true;
      t.deferred.push(sub);
      wait = t.seq;
    }
  } else {
    if (!sub.node.inTree) bug('warn', 'removing an interval notifier that is not in the tree');
    t.treeRemove(sub);
  }
  t.check();
  t.lock.unlock();
  // A callback holding a lock the caller holds would deadlock against this wait.
  invalidateStartMap.touch();
  if (wait >= 0) yield* t.wq.waitEvent(() => t.seq !== wait);
  if (sub.running > 0 || sub.node.inTree || sub.deferred)
    bug(
      'itree-invariant',
      'mmu_interval_notifier_remove returned while its subscription is still reachable',
    );
  sub.removed = true;
  sub.mm = null;
  mmdrop(mm);
}

/**
 * mmu_interval_read_begin(): the sequence a reader must later pass to readRetry. Sleeps only
 * while this subscription is being invalidated (or was inserted in the current odd phase).
 */
export function* mmuIntervalReadBegin(sub: MmuIntervalNotifier): Co<number> {
  const t = itreeOf(sub);
  yield* t.lock.lock();
  const seq = sub.invalidateSeq;
  const busy = seq === t.seq;
  t.lock.unlock();
  invalidateStartMap.touch();
  if (busy) yield* t.wq.waitEvent(() => t.seq !== seq);
  const k = kernel();
  if (k.trace.on && sub.mm !== null)
    k.trace.emit('seq-begin', {
      mm: sub.mm.id,
      owner: intervalName(sub),
      fn: 'mmu_interval_read_begin',
      seq,
      waited: busy,
    });
  return seq;
}

/** mmu_interval_read_retry(): true when an invalidation hit since readBegin; call under the driver lock. */
export function mmuIntervalReadRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  const retry = sub.invalidateSeq !== seq;
  traceCheck(sub, 'mmu_interval_read_retry', seq, retry);
  return retry;
}

/** mmu_interval_check_retry(): the same, lockless and advisory (true is definitive). */
export function mmuIntervalCheckRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  const retry = sub.invalidateSeq !== seq;
  // hmm_range_fault() asks once per page: only the check that stops the walk is shown.
  if (retry) traceCheck(sub, 'mmu_interval_check_retry', seq, retry);
  return retry;
}

/** How traces name a subscription: its interval. */
function intervalName(sub: MmuIntervalNotifier): string {
  return `interval [${hex(sub.start)}, ${hex(sub.last + 1)})`;
}

function traceCheck(sub: MmuIntervalNotifier, fn: string, seq: number, retry: boolean): void {
  const k = sub.mm?.machine.kernel;
  if (k?.trace.on !== true || sub.mm === null) return;
  k.trace.emit('seq-check', {
    mm: sub.mm.id,
    owner: intervalName(sub),
    fn,
    seq,
    cur: sub.invalidateSeq,
    retry,
  });
}

/** mmu_interval_set_seq(): from ->invalidate, under the driver lock. */
export function mmuIntervalSetSeq(sub: MmuIntervalNotifier, curSeq: number): void {
  if ((curSeq & 1) === 0)
    bug('itree-invariant', `mmu_interval_set_seq with even sequence ${curSeq}`);
  sub.invalidateSeq = curSeq;
}
