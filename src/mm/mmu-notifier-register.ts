/**
 * Registration and teardown of classic MMU notifiers (mmu_notifier_register / get / put /
 * unregister) and mmu_notifier_release() at exit.
 */

import { mightSleep } from '../kernel/context.ts';
import { bug, kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import type { File } from './file.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { mmdrop, mmgrab } from './mm-refs.ts';
import { traceCallback } from './mmu-notifier-clients.ts';
import { markFreed, markUnregistered, runSubscriberCallback } from './mmu-notifier-lifetime.ts';
import { NotifierSubscriptions } from './mmu-notifier-subscriptions.ts';
import type { MmuNotifier, MmuNotifierOps } from './mmu-notifier-types.ts';

/**
 * mm_take_all_locks(): with mmap_lock held for write, takes every rmap lock of the mm (its
 * anon_vma lock and the i_mmap lock of every mapped file) so that no invalidation pair is in
 * flight. The i_mmap locks come first, as in Linux (mm/rmap.c order: i_mmap_rwsem, then
 * anon_vma->rwsem; mremap's take_rmap_locks() relies on it). Returns the release function
 * (mm_drop_all_locks()).
 */
export function* mmTakeAllLocks(mm: Mm): Co<() => void> {
  const files = [...new Set(mm.vmas.map((v) => v.file).filter((f): f is File => f !== null))].sort(
    (a, b) => a.id - b.id,
  );
  for (const f of files) yield* f.iMmapLock.downWrite();
  yield* mm.rmapLock.downWrite();
  return () => {
    mm.rmapLock.upWrite();
    for (const f of files.reverse()) f.iMmapLock.upWrite();
  };
}

/**
 * __mmu_notifier_register(): the mmap lock is held for write. `sub` null switches the mm to
 * interval-tree mode (has_itree).
 */
export function* registerLocked(sub: MmuNotifier | null, mm: Mm): Co {
  if (!mm.mmapLock.isWriteLockedByCurrent())
    bug('warn', '__mmu_notifier_register without mmap_lock held for write');
  if (mm.users <= 0)
    throw new Errno(
      'EINVAL',
      `mm${mm.id} has no users: cannot register a notifier on a dead address space`,
    );
  // Linking it again would corrupt the list (hlist_add_head_rcu() of a hashed node).
  if (sub !== null && (sub.hashed || sub.users > 0))
    bug('warn', `mmu_notifier_register of a notifier still registered on mm${sub.mm?.id}`);
  const fresh = mm.notifiers === null ? new NotifierSubscriptions(mm) : null;
  const dropAll = yield* mmTakeAllLocks(mm);
  // smp_store_release(): lockless readers (mm_has_notifiers()) see the state only once every
  // rmap lock is held, so no invalidation in flight can meet a half-registered mm.
  if (fresh !== null) mm.notifiers = fresh;
  const subs = mm.notifiers!;
  if (sub !== null) {
    mmgrab(mm);
    sub.mm = mm;
    sub.users = 1;
    sub.unregistered = false;
    yield* subs.lock.lock();
    subs.list.push(sub);
    sub.hashed = true;
    subs.lock.unlock();
  } else {
    subs.hasItree = true;
  }
  dropAll();
}

/** mmu_notifier_register(): takes the mmap lock for write. */
export function* mmuNotifierRegister(sub: MmuNotifier, mm: Mm): Co {
  return yield* mmPath('mmu_notifier_register', mm, mmuNotifierRegisterBody(sub, mm));
}

function* mmuNotifierRegisterBody(sub: MmuNotifier, mm: Mm): Co {
  yield* mm.mmapLock.downWrite();
  try {
    yield* registerLocked(sub, mm);
  } finally {
    mm.mmapLock.upWrite();
  }
}

/**
 * mmu_notifier_get_locked(): the subscriber with these ops on the mm, its users bumped, or a
 * new one from ops.allocNotifier(). The mmap lock is held for write.
 */
export function* mmuNotifierGetLocked(ops: MmuNotifierOps, mm: Mm): Co<MmuNotifier> {
  return yield* mmPath('mmu_notifier_get_locked', mm, mmuNotifierGetLockedBody(ops, mm));
}

function* mmuNotifierGetLockedBody(ops: MmuNotifierOps, mm: Mm): Co<MmuNotifier> {
  if (!mm.mmapLock.isWriteLockedByCurrent())
    bug('warn', 'mmu_notifier_get_locked without mmap_lock held for write');
  const subs = mm.notifiers;
  if (subs !== null) {
    yield* subs.lock.lock();
    const found = subs.list.find((s) => s.ops === ops);
    if (found !== undefined) {
      if (found.users >= 0xffffffff) {
        subs.lock.unlock();
        throw new Errno('EOVERFLOW', 'mmu_notifier_get: users count would overflow');
      }
      found.users++;
      subs.lock.unlock();
      return found;
    }
    subs.lock.unlock();
  }
  if (ops.allocNotifier === undefined)
    throw new Errno('EINVAL', 'mmu_notifier_get needs ops.allocNotifier');
  const sub = ops.allocNotifier(mm);
  try {
    yield* registerLocked(sub, mm);
  } catch (e) {
    ops.freeNotifier?.(sub);
    throw e;
  }
  return sub;
}

/** mmu_notifier_get(): takes the mmap lock for write. */
export function* mmuNotifierGet(ops: MmuNotifierOps, mm: Mm): Co<MmuNotifier> {
  return yield* mmPath('mmu_notifier_get', mm, mmuNotifierGetBody(ops, mm));
}

function* mmuNotifierGetBody(ops: MmuNotifierOps, mm: Mm): Co<MmuNotifier> {
  yield* mm.mmapLock.downWrite();
  try {
    return yield* mmuNotifierGetLocked(ops, mm);
  } finally {
    mm.mmapLock.upWrite();
  }
}

/**
 * mmu_notifier_put(): drops a users reference; the last unlinks the subscriber and frees it
 * after an SRCU grace period. Never calls ->release.
 */
export function* mmuNotifierPut(sub: MmuNotifier): Co {
  const mm = sub.mm;
  if (mm === null || sub.users <= 0)
    bug('warn', 'mmu_notifier_put on a notifier that is not registered');
  yield* mmPath('mmu_notifier_put', mm, put(sub, mm));
}

function* put(sub: MmuNotifier, mm: Mm): Co {
  const subs = mm.notifiers!;
  yield* subs.lock.lock();
  const last = --sub.users === 0;
  if (last) unlink(sub);
  subs.lock.unlock();
  if (!last) return;
  mm.machine.notifierSrcu.callSrcu(() => {
    markFreed(sub);
    sub.ops.freeNotifier?.(sub);
    mmdrop(mm);
  });
}

/**
 * mmu_notifier_unregister(): calls ->release if the subscriber is still linked, unlinks it,
 * waits for running callbacks (synchronize_srcu), then drops the mm reference. Afterwards no
 * callback runs or will run.
 */
export function* mmuNotifierUnregister(sub: MmuNotifier, mm: Mm): Co {
  return yield* mmPath('mmu_notifier_unregister', mm, mmuNotifierUnregisterBody(sub, mm));
}

function* mmuNotifierUnregisterBody(sub: MmuNotifier, mm: Mm): Co {
  mightSleep('mmu_notifier_unregister');
  const subs = mm.notifiers;
  if (subs === null || sub.mm !== mm)
    bug('warn', 'mmu_notifier_unregister of a notifier not registered on this mm');
  // Twice would drop the registration's mm_count reference twice.
  if (sub.users <= 0) bug('warn', 'mmu_notifier_unregister of a notifier already unregistered');
  const srcu = mm.machine.notifierSrcu;
  if (sub.hashed) {
    const idx = srcu.readLock();
    if (sub.ops.release !== undefined) {
      traceCallback(mm, sub.ops.client, 'release', null);
      yield* runSubscriberCallback(sub, 'release', sub.ops.release.call(sub.ops, sub, mm));
    }
    srcu.readUnlock(idx);
    yield* subs.lock.lock();
    unlink(sub);
    subs.lock.unlock();
  }
  yield* srcu.synchronize();
  markUnregistered(sub);
  sub.users = 0;
  mmdrop(mm);
}

/**
 * mmu_notifier_unregister_no_release() (2.6.37 to 5.3): unlinks the subscriber without calling
 * ->release and drops the mm reference its registration took. It is no fence: callbacks
 * already running may go on, so the caller frees its structure only after an SRCU grace
 * period (mmu_notifier_call_srcu(), here `free` run then).
 */
export function* mmuNotifierUnregisterNoRelease(
  sub: MmuNotifier,
  mm: Mm,
  free: () => void = () => {},
): Co {
  return yield* mmPath(
    'mmu_notifier_unregister_no_release',
    mm,
    mmuNotifierUnregisterNoReleaseBody(sub, mm, free),
  );
}

function* mmuNotifierUnregisterNoReleaseBody(sub: MmuNotifier, mm: Mm, free: () => void): Co {
  const subs = mm.notifiers;
  if (subs === null || sub.mm !== mm)
    bug('warn', 'mmu_notifier_unregister_no_release of a notifier not registered on this mm');
  yield* subs!.lock.lock();
  unlink(sub);
  subs!.lock.unlock();
  sub.users = 0;
  mmdrop(mm);
  mm.machine.notifierSrcu.callSrcu(() => {
    markFreed(sub);
    free();
  });
}

/** mmu_notifier_synchronize(): waits for every pending free of a put notifier. */
export function* mmuNotifierSynchronize(mm: Mm): Co {
  yield* mm.machine.notifierSrcu.synchronize();
  yield* mm.machine.notifierSrcu.barrier();
}

/**
 * mmu_notifier_release() at the start of exit_mmap(): the itree gets a RELEASE invalidation
 * of the whole address space; each classic subscriber's ->release runs while it is still
 * linked, then all are unlinked and a grace period passes.
 */
export function* mmuNotifierRelease(mm: Mm): Co {
  return yield* mmPath('mmu_notifier_release', mm, mmuNotifierReleaseBody(mm));
}

function* mmuNotifierReleaseBody(mm: Mm): Co {
  const subs = mm.notifiers;
  const k = kernel();
  if (k.trace.on) k.trace.emit('mmu-release', { mm: mm.id });
  if (subs === null) return;
  if (subs.hasItree) yield* subs.itree.release(mm);
  if (subs.list.length === 0) return;
  const srcu = mm.machine.notifierSrcu;
  const idx = srcu.readLock();
  for (const sub of [...subs.list]) {
    if (sub.ops.release === undefined) continue;
    traceCallback(mm, sub.ops.client, 'release', null);
    yield* runSubscriberCallback(sub, 'release', sub.ops.release.call(sub.ops, sub, mm));
  }
  yield* subs.lock.lock();
  for (const sub of [...subs.list]) unlink(sub);
  subs.lock.unlock();
  srcu.readUnlock(idx);
  yield* srcu.synchronize();
}

function unlink(sub: MmuNotifier): void {
  const subs = sub.mm?.notifiers;
  // hlist_del_init_rcu(): a no-op on an unhashed node; a hashed node missing from the list is
  // a corrupted list, which must show rather than unlink a neighbour.
  if (subs === undefined || subs === null || !sub.hashed) return;
  const i = subs.list.indexOf(sub);
  if (i < 0) bug('warn', "a hashed classic notifier is not on its mm's list");
  subs.list.splice(i, 1);
  sub.hashed = false;
}
