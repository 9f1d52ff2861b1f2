/**
 * The classic MMU notifier (mm/mmu_notifier.c, include/linux/mmu_notifier.h): the calls the
 * mm makes at every change of a page-table entry, dispatched to the subscribers of the hlist
 * under SRCU and to the interval tree, with might_sleep and the lockdep annotations.
 */

import { mightSleep, nonBlockEnd, nonBlockStart } from '../kernel/context.ts';
import { bug, kernel } from '../kernel/kernel.ts';
import { LockdepMap } from '../kernel/sync/lockdep-map.ts';
import type { Co } from '../kernel/task.ts';
import type { Mm } from './mm.ts';
import { type MnCallback, traceCallback } from './mmu-notifier-clients.ts';
import { checkSubscriberAlive, runSubscriberCallback } from './mmu-notifier-lifetime.ts';
import {
  EAGAIN,
  type MmuNotifier,
  type MmuNotifierRange,
  type MmuNotifyEvent,
} from './mmu-notifier-types.ts';

/** __mmu_notifier_invalidate_range_start_map: held across start and end dispatch. */
export const invalidateStartMap = new LockdepMap('mmu_notifier_invalidate_range_start');

/** mmu_notifier_range_init() (with _owner when `owner` is given). */
export function rangeInit(
  mm: Mm,
  event: MmuNotifyEvent,
  start: number,
  end: number,
  options: { blockable?: boolean; owner?: unknown } = {},
): MmuNotifierRange {
  return {
    mm,
    start,
    end,
    event,
    blockable: options.blockable ?? true,
    owner: options.owner ?? null,
    id: mm.machine.rangeId(),
  };
}

/** mmu_notifier_invalidate_range_start(): may sleep; cannot fail. */
export function* invalidateRangeStart(range: MmuNotifierRange): Co {
  mightSleep('mmu_notifier_invalidate_range_start');
  const ret = yield* startDispatch(range);
  if (ret !== 0) bug('warn', `blockable invalidate_range_start failed with ${ret}`);
}

/**
 * mmu_notifier_invalidate_range_start_nonblock(): 0, or EAGAIN when a subscriber would have had
 * to sleep. After EAGAIN the core has unwound; the caller must not call the end.
 */
export function* invalidateRangeStartNonblock(range: MmuNotifierRange): Co<number> {
  if (range.blockable) bug('warn', 'invalidateRangeStartNonblock needs a non-blockable range');
  return yield* startDispatch(range);
}

function* startDispatch(range: MmuNotifierRange): Co<number> {
  const k = kernel();
  const mm = range.mm;
  if (k.trace.on) {
    k.trace.emit('mmu-start', {
      mm: mm.id,
      start: range.start,
      end: range.end,
      event: range.event,
      blockable: range.blockable,
      id: range.id,
    });
  }
  let ret = 0;
  const subs = mm.notifiers;
  if (subs !== null) {
    invalidateStartMap.acquire();
    const itree = subs.hasItree && subs.itree !== null;
    if (itree && !(yield* subs.itree.invalidate(range))) ret = EAGAIN;
    if (ret === 0 && subs.list.length > 0) {
      ret = yield* hlistStart(range);
      // The interval side began and succeeded, but the caller will not call the end: as in
      // every kernel since 5.5 nothing ends it, and the mm's interval sequence stays odd for
      // good (docs/findings/itree-nonblock-leak.md). The switch is the proposed fix.
      if (ret !== 0 && itree && mm.machine.unwindItreeOnRefusal) yield* subs.itree.invEnd();
    }
    invalidateStartMap.release();
  }
  if (k.trace.on) k.trace.emit('mmu-start-done', { mm: mm.id, id: range.id, ok: ret === 0 });
  return ret;
}

/**
 * mn_hlist_invalidate_range_start(): every subscriber's start is called even after one failed
 * (a subscriber cannot know whether its start ran), then on failure every subscriber with an
 * end gets it, so each end pairs with a start (c2655835fd8c).
 */
function* hlistStart(range: MmuNotifierRange): Co<number> {
  const subs = range.mm.notifiers!;
  const srcu = range.mm.machine.notifierSrcu;
  const idx = srcu.readLock();
  // Before c2655835fd8c a failed start was only reported (MachineOptions.legacyNotifierCore).
  const unwind = !range.mm.machine.legacyNotifierCore;
  const leaveUnpaired = kernel().mutant('notifier.nonblock-unpaired');
  let ret = 0;
  for (const sub of [...subs.list]) {
    const start = sub.ops.invalidateRangeStart;
    if (start === undefined) continue;
    traceCallback(range.mm, sub.ops.client, 'invalidate_range_start', range.event);
    if (!range.blockable) nonBlockStart();
    const r = yield* runSubscriberCallback(
      sub,
      'invalidate_range_start',
      start.call(sub.ops, sub, range),
    );
    if (!range.blockable) nonBlockEnd();
    if (r !== 0) {
      if (range.blockable || r !== EAGAIN)
        bug('warn', `invalidate_range_start failed with ${r} (blockable ${range.blockable})`);
      if (unwind && sub.ops.invalidateRangeEnd !== undefined)
        bug('warn', 'a subscriber whose start can fail has an end op');
      ret = r;
    }
  }
  // Mutant N4: the pre-c2655835fd8c core returned EAGAIN without ending the subscribers
  // whose start had succeeded.
  if (ret !== 0 && unwind && !leaveUnpaired) {
    for (const sub of [...subs.list]) {
      const end = sub.ops.invalidateRangeEnd;
      if (end === undefined) continue;
      traceCallback(range.mm, sub.ops.client, 'invalidate_range_end', range.event);
      yield* runSubscriberCallback(sub, 'invalidate_range_end', end.call(sub.ops, sub, range));
    }
  }
  srcu.readUnlock(idx);
  return ret;
}

/** mmu_notifier_invalidate_range_end(): pairs with a successful start, same range. */
export function* invalidateRangeEnd(range: MmuNotifierRange): Co {
  if (range.blockable) mightSleep('mmu_notifier_invalidate_range_end');
  const k = kernel();
  const mm = range.mm;
  const subs = mm.notifiers;
  // The legacy core checks start only: the map came in 5.4 (23b68395c7c7), when it covered end
  // too, which the interim RDMA ODP design (holding umem_rwsem from start to end) could not pass.
  const endMap = !mm.machine.legacyNotifierCore;
  if (subs !== null) {
    if (endMap) invalidateStartMap.acquire();
    if (subs.hasItree) yield* subs.itree.invEnd();
    if (subs.list.length > 0) {
      const srcu = mm.machine.notifierSrcu;
      const idx = srcu.readLock();
      const nonblock = !range.blockable && !mm.machine.legacyNotifierCore;
      for (const sub of [...subs.list]) {
        const end = sub.ops.invalidateRangeEnd;
        if (end === undefined) continue;
        traceCallback(mm, sub.ops.client, 'invalidate_range_end', range.event);
        if (nonblock) nonBlockStart();
        yield* runSubscriberCallback(sub, 'invalidate_range_end', end.call(sub.ops, sub, range));
        if (nonblock) nonBlockEnd();
      }
      srcu.readUnlock(idx);
    }
    if (endMap) invalidateStartMap.release();
  }
  if (k.trace.on)
    k.trace.emit('mmu-end', {
      mm: mm.id,
      start: range.start,
      end: range.end,
      event: range.event,
      id: range.id,
    });
}

/**
 * mmu_notifier_arch_invalidate_secondary_tlbs(): called from every CPU TLB flush, under the
 * page-table lock. The hook must not sleep, so it is a plain call.
 */
export function archInvalidateSecondaryTlbs(mm: Mm, start: number, end: number): void {
  const subs = mm.notifiers;
  if (subs === null || subs.list.length === 0) return;
  const srcu = mm.machine.notifierSrcu;
  const idx = srcu.readLock();
  for (const sub of subs.list) {
    const hook = sub.ops.archInvalidateSecondaryTlbs;
    if (hook === undefined) continue;
    checkSubscriberAlive(sub, 'arch_invalidate_secondary_tlbs');
    traceCallback(mm, sub.ops.client, 'arch_invalidate_secondary_tlbs', null);
    hook.call(sub.ops, sub, mm, start, end);
  }
  srcu.readUnlock(idx);
}

/** Shared walk of the aging notifiers: ORs the results, stopping early when asked. */
function* ageWalk(
  mm: Mm,
  callback: MnCallback,
  call: (sub: MmuNotifier) => Co<boolean> | undefined,
  stopAtFirst: boolean,
): Co<boolean> {
  const subs = mm.notifiers;
  if (subs === null || subs.list.length === 0) return false;
  const srcu = mm.machine.notifierSrcu;
  const idx = srcu.readLock();
  let young = false;
  for (const sub of [...subs.list]) {
    const co = call(sub);
    if (co === undefined) continue;
    traceCallback(mm, sub.ops.client, callback, null);
    young = (yield* runSubscriberCallback(sub, 'aging', co)) || young;
    if (young && stopAtFirst) break;
  }
  srcu.readUnlock(idx);
  return young;
}

/** mmu_notifier_clear_flush_young(). */
export function* clearFlushYoung(mm: Mm, start: number, end: number): Co<boolean> {
  return yield* ageWalk(
    mm,
    'clear_flush_young',
    (s) => s.ops.clearFlushYoung?.call(s.ops, s, mm, start, end),
    false,
  );
}

/** mmu_notifier_clear_young(). */
export function* clearYoung(mm: Mm, start: number, end: number): Co<boolean> {
  return yield* ageWalk(
    mm,
    'clear_young',
    (s) => s.ops.clearYoung?.call(s.ops, s, mm, start, end),
    false,
  );
}

/** mmu_notifier_test_young(): stops at the first young answer. */
export function* testYoung(mm: Mm, addr: number): Co<boolean> {
  return yield* ageWalk(mm, 'test_young', (s) => s.ops.testYoung?.call(s.ops, s, mm, addr), true);
}
