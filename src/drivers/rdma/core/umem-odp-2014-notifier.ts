/**
 * The MMU notifier of a ucontext in the 2014 ODP design (umem_odp.c of 882214e2b128, with the
 * non-blockable start of 93065ac753e4, v4.19), and in the interim design (ca748c39ea3f, 4.20 to
 * 5.4), whose range_start keeps umem_rwsem for read until range_end and counts nothing
 * per context: ib_umem_notifier_invalidate_range_start / _end /
 * release, the per-umem start/end accounting (ib_umem_notifier_start_account / end_account),
 * the per-context count (ib_ucontext_notifier_start_account / end_account) with the deferred
 * activation it drives, and invalidate_page_trampoline.
 */
import { charge, treeWalk } from '../../../cost/charge.ts';
import { preempt } from '../../../kernel/context.ts';
import { kernel } from '../../../kernel/kernel.ts';
import type { Co } from '../../../kernel/task.ts';
import { PAGE_SIZE } from '../../../mm/constants.ts';
import { EAGAIN, MmuNotifier, type MmuNotifierRange } from '../../../mm/mmu-notifier-types.ts';
import { activate, type UcontextOdp2014, type UmemOdp2014 } from './umem-odp-2014.ts';

/** ib_umem_notifier_start_account(): count the invalidation on an active umem. */
function* umemStartAccount(umem: UmemOdp2014): Co {
  yield* umem.umemMutex.lock();
  // An inactive umem keeps no counters: all its faults are delayed until it is activated.
  if (umem.mnCountersActive && umem.notifiersCount++ === 0) umem.notifierCompletion.reinit();
  umem.umemMutex.unlock();
}

/** ib_umem_notifier_end_account(): bump the sequence; the last one out wakes the faults. */
function* umemEndAccount(umem: UmemOdp2014): Co {
  yield* umem.umemMutex.lock();
  if (umem.mnCountersActive) {
    umem.notifiersSeq++;
    if (--umem.notifiersCount === 0) umem.notifierCompletion.completeAll();
  }
  umem.umemMutex.unlock();
}

/**
 * ib_ucontext_notifier_end_account(): the context's count goes down; at zero, with umems
 * waiting, they are activated under umem_rwsem held for write after re-reading the count.
 * The list is looked at without the rwsem (a registration's insertion can race it: the
 * registration re-checks the count, see ibUmemOdpGet2014).
 */
function* contextEndAccount(odp: UcontextOdp2014): Co {
  const zero = (yield* odp.notifierCount.dec()) === 0;
  if (!zero) return;
  // list_empty() is a separate, unlocked read: a registration may be adding to the list.
  yield* preempt();
  const k = kernel();
  if (k.trace.on)
    k.trace.emit('odp-notifiers-idle', { ctx: odp.name, waiting: odp.noPrivateCounters.length });
  if (odp.noPrivateCounters.length === 0) return;
  yield* odp.umemRwsem.downWrite();
  if ((yield* odp.notifierCount.read()) === 0) {
    for (const umem of [...odp.noPrivateCounters]) yield* activate(umem);
  }
  odp.umemRwsem.upWrite();
}

/** The umems of the tree intersecting [start, end) (the tree is stable under umem_rwsem). */
function umemsIn(odp: UcontextOdp2014, start: number, end: number): UmemOdp2014[] {
  // The study's linear-list variant examines every umem of the context instead.
  if (odp.linearDispatch) {
    const all = odp.tree.overlaps(0, Number.MAX_SAFE_INTEGER).map((n) => n.value);
    charge('notifier.walk', all.length);
    return all.filter((u) => u.start < end && u.end > start);
  }
  const hits = odp.tree.overlaps(start, end - 1).map((n) => n.value);
  charge('notifier.walk', treeWalk(odp.tree.size, hits.length));
  return hits;
}

/** The driver's invalidation of [start, end) ∩ the umem. */
function* invalidate(odp: UcontextOdp2014, umem: UmemOdp2014, start: number, end: number): Co {
  const k = kernel();
  if (k.trace.on) k.trace.emit('odp-invalidate', { umem: umem.name });
  yield* odp.invalidateRange!(umem, Math.max(start, umem.start), Math.min(end, umem.end));
}

/**
 * invalidate_page_trampoline(): one page, start and end accounted at once (used when a fault
 * finds a different page in a slot).
 */
export function* umemInvalidatePage(umem: UmemOdp2014, addr: number): Co {
  const odp = umem.context.odp2014;
  yield* umemStartAccount(umem);
  if (odp.invalidateRange !== null) yield* invalidate(odp, umem, addr, addr + PAGE_SIZE);
  yield* umemEndAccount(umem);
}

/**
 * ib_umem_notifier_invalidate_range_start(): umem_rwsem for read (a trylock when the range is
 * not blockable), the context count up, then each intersecting umem accounted and invalidated
 * through the driver. Not blockable and a umem intersects: EAGAIN, leaving everything as it
 * was (the invalidation would sleep).
 */
function* invalidateRangeStart(odp: UcontextOdp2014, range: MmuNotifierRange): Co<number> {
  if (odp.invalidateRange === null) return 0;
  if (range.blockable) yield* odp.umemRwsem.downRead();
  else if (!odp.umemRwsem.downReadTrylock()) return EAGAIN;
  if (odp.interim && !odp.active) {
    // The last MR is gone: nothing to do, and range_end will not unlock.
    odp.umemRwsem.upRead();
    return 0;
  }
  const umems = umemsIn(odp, range.start, range.end);
  const leak = kernel().mutant('odp.nonblock-start-leak');
  if (!range.blockable && umems.length > 0) {
    // Mutant O2: the EAGAIN return leaves umem_rwsem held (7608bf40cf24 fixed this shape).
    if (!leak) odp.umemRwsem.upRead();
    return EAGAIN;
  }
  if (!odp.interim) yield* odp.notifierCount.inc();
  for (const umem of umems) {
    yield* umemStartAccount(umem);
    yield* invalidate(odp, umem, range.start, range.end);
  }
  // The interim design keeps umem_rwsem until range_end.
  if (!odp.interim) odp.umemRwsem.upRead();
  return 0;
}

/** ib_umem_notifier_invalidate_range_end(): each intersecting umem's end, then the context's. */
function* invalidateRangeEnd(odp: UcontextOdp2014, range: MmuNotifierRange): Co {
  if (odp.invalidateRange === null) return;
  if (odp.interim) {
    // umem_rwsem is still held from range_start (unless the context had no MR left then).
    if (!odp.active) return;
    for (const umem of umemsIn(odp, range.start, range.end)) yield* umemEndAccount(umem);
    odp.umemRwsem.upRead();
    return;
  }
  yield* odp.umemRwsem.downRead();
  for (const umem of umemsIn(odp, range.start, range.end)) yield* umemEndAccount(umem);
  odp.umemRwsem.upRead();
  yield* contextEndAccount(odp);
}

/**
 * ib_umem_notifier_release(): the owner's mm is going away. Every umem is accounted as
 * invalidated for good (never ended), marked dying so that faults fail instead of waiting, its
 * waiters released, and the whole of it invalidated. The context count is raised and never
 * lowered.
 */
function* release(odp: UcontextOdp2014): Co {
  if (odp.invalidateRange === null) return;
  if (!odp.interim) yield* odp.notifierCount.inc();
  yield* odp.umemRwsem.downRead();
  for (const umem of umemsIn(odp, 0, Number.MAX_SAFE_INTEGER)) {
    yield* umemStartAccount(umem);
    umem.dying = true;
    umem.notifierCompletion.completeAll();
    yield* invalidate(odp, umem, umem.start, umem.end);
  }
  odp.umemRwsem.upRead();
}

/** The context's classic notifier (ib_umem_notifiers). */
export function odpNotifier2014(odp: UcontextOdp2014): MmuNotifier {
  return new MmuNotifier({
    client: odp.interim ? 'rdma-odp-2018' : 'rdma-odp-2014',
    release: () => release(odp),
    invalidateRangeStart: (_sub, range) => invalidateRangeStart(odp, range),
    invalidateRangeEnd: (_sub, range) => invalidateRangeEnd(odp, range),
  });
}
