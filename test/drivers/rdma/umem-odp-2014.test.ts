// The 2014 ODP core (umem_odp.c of 882214e2b128): registration, the per-context notifier and
// its accounting, the fault-side map and the invalidation-side unmap, and release.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ibUmemOdpGet2014,
  ibUmemOdpMapDmaPages2014,
  ibUmemOdpRelease2014,
  ibUmemOdpUnmapDmaPages2014,
  type UmemOdp2014,
  umemMmuNotifierRetry,
} from '../../../src/drivers/rdma/core/umem-odp-2014.ts';
import { ibUverbsClose } from '../../../src/drivers/rdma/core/uverbs.ts';
import { ibDeregMr, ibRegMr } from '../../../src/drivers/rdma/core/verbs.ts';
import { Mlx5Device } from '../../../src/drivers/rdma/hw/mlx5/main.ts';
import { type Co, isErrno, isKernelBug } from '../../../src/index.ts';
import { join, sleep } from '../../../src/kernel/context.ts';
import { TimedStrategy } from '../../../src/kernel/strategies/timed.ts';
import { BLOCKED } from '../../../src/kernel/task.ts';
import { MADV_DONTNEED } from '../../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../../src/mm/cpu-access.ts';
import type { Machine } from '../../../src/mm/machine.ts';
import { madvise } from '../../../src/mm/madvise.ts';
import {
  invalidateRangeEnd,
  invalidateRangeStart,
  invalidateRangeStartNonblock,
  rangeInit,
} from '../../../src/mm/mmu-notifier.ts';
import { munmap } from '../../../src/mm/munmap.ts';
import { exitMm, forkProcess } from '../../../src/mm/process.ts';
import { mapPages, ODP_ALL, P, type RdmaWorld, runRdma, slotString } from './kit.ts';

/** Errno code of a generator's failure, or 'ok'. */
function* outcome(co: Co<unknown>): Co<string> {
  try {
    yield* co;
    return 'ok';
  } catch (e) {
    if (isErrno(e)) return e.code;
    throw e;
  }
}

/** A umem of `pages` pages over fresh memory of the server (its context). */
function* umem(w: RdmaWorld, pages: number): Co<{ u: UmemOdp2014; at: number }> {
  const at = yield* mapPages(w.server, pages, (i) => i + 1);
  const u = yield* ibUmemOdpGet2014(w.sep.ctx, w.server, at, pages * P, true);
  return { u, at };
}

test('only the context creator registers ODP umems: a forked child gets EINVAL, an exited one too', () => {
  const seen: string[] = [];
  const r = runRdma(function* (w) {
    const at = yield* mapPages(w.server, 1);
    const child = yield* forkProcess(w.server);
    seen.push(yield* outcome(ibUmemOdpGet2014(w.sep.ctx, child, at, P, true)));
    yield* exitMm(child);
    seen.push(yield* outcome(ibUmemOdpGet2014(w.sep.ctx, child, at, P, true)));
  });
  assert.deepEqual(seen, ['EINVAL', 'EINVAL']);
  assert.equal(r.ok, true, r.bug?.message);
});

test("the first ODP umem registers the context's notifier, the last release unregisters it", () => {
  const counts: number[] = [];
  runRdma(function* (w) {
    const mm = w.server.mm!;
    const list = () => mm.notifiers?.list.length ?? 0;
    const a = yield* umem(w, 2);
    counts.push(list(), mm.count);
    const b = yield* umem(w, 1);
    counts.push(list(), w.sep.ctx.odp2014.odpMrsCount);
    yield* ibUmemOdpRelease2014(a.u);
    counts.push(list());
    yield* ibUmemOdpRelease2014(b.u);
    counts.push(list(), mm.count, w.sep.ctx.odp2014.tree.size);
  });
  // One subscriber (holding an mm_count), still one with two umems, gone after the last.
  assert.deepEqual(counts, [1, 2, 1, 2, 1, 0, 1, 0]);
});

test('a umem registered while a notifier runs stays inactive (its faults retry) until that notifier ends', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const first = yield* umem(w, 1);
    const mm = w.server.mm!;
    const range = rangeInit(mm, 'CLEAR', first.at, first.at + P);
    yield* invalidateRangeStart(range);
    const late = yield* umem(w, 2);
    seen.push(late.u.mnCountersActive, w.sep.ctx.odp2014.noPrivateCounters.length);
    seen.push(umemMmuNotifierRetry(late.u, late.u.notifiersSeq));
    seen.push(
      yield* outcome(ibUmemOdpMapDmaPages2014(late.u, late.at, P, { read: true, write: false }, 0)),
    );
    yield* invalidateRangeEnd(range);
    seen.push(late.u.mnCountersActive, w.sep.ctx.odp2014.noPrivateCounters.length);
    seen.push(
      yield* ibUmemOdpMapDmaPages2014(late.u, late.at, 2 * P, { read: true, write: false }, 0),
    );
    yield* ibUmemOdpRelease2014(late.u);
    yield* ibUmemOdpRelease2014(first.u);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [false, 1, true, 'EAGAIN', true, 0, 2]);
});

test('interim design (4.20): range_start holds umem_rwsem until range_end, so a registration waits for the invalidation and is active at once', () => {
  const seen: unknown[] = [];
  const r = runRdma(
    function* (w) {
      const first = yield* umem(w, 1);
      const odp = w.sep.ctx.odp2014;
      const range = rangeInit(w.server.mm!, 'CLEAR', first.at, first.at + P);
      yield* invalidateRangeStart(range);
      seen.push(odp.interim, odp.umemRwsem.isLockedByCurrent(), first.u.notifiersCount);
      // The registration blocks on umem_rwsem until the end.
      const late = w.k.spawn('register', () => umem(w, 2));
      // Long enough for its mmap and page faults (charged by the cost model) to reach the lock.
      yield* sleep(100_000);
      seen.push(odp.odpMrsCount, late.state === BLOCKED);
      yield* invalidateRangeEnd(range);
      const { u } = yield* join(late);
      seen.push(
        odp.odpMrsCount,
        u.mnCountersActive,
        first.u.notifiersSeq,
        odp.noPrivateCounters.length,
      );
      yield* ibUmemOdpRelease2014(u);
      yield* ibUmemOdpRelease2014(first.u);
    },
    { odpDesign: 2018, strategy: new TimedStrategy() },
  );
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [true, true, 1, 1, true, 2, true, 1, 0]);
});

test('map_dma_pages: EFAULT outside the umem; pages mapped with the access asked; EAGAIN on a moved sequence', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const { u, at } = yield* umem(w, 3);
    seen.push(
      yield* outcome(ibUmemOdpMapDmaPages2014(u, at - P, P, { read: true, write: false }, 0)),
    );
    seen.push(
      yield* outcome(ibUmemOdpMapDmaPages2014(u, at, 3 * P, { read: false, write: false }, 0)),
    );
    seen.push(yield* ibUmemOdpMapDmaPages2014(u, at + 100, 2 * P, { read: true, write: true }, 0));
    seen.push(slotString(u));
    const page = w.server.mm!.pte(at + P)!.page!;
    seen.push(u.slots.get(1)!.page === page && u.slots.get(1)!.gen === page.gen);
    seen.push(yield* outcome(ibUmemOdpMapDmaPages2014(u, at, P, { read: true, write: false }, 7)));
    yield* ibUmemOdpRelease2014(u);
  });
  assert.equal(r.ok, true, r.bug?.message);
  // at + 100 plus two pages touches three pages.
  assert.deepEqual(seen, ['EFAULT', 'EINVAL', 3, 'www', true, 'EAGAIN']);
});

test('map_dma_pages maps up to a hole and reports how many; a hole at the start is the GUP error', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const { u, at } = yield* umem(w, 4);
    yield* munmap(w.server.mm!, at + 2 * P, P);
    const seq = u.notifiersSeq;
    seen.push(yield* ibUmemOdpMapDmaPages2014(u, at, 4 * P, { read: true, write: false }, seq));
    seen.push(
      yield* outcome(ibUmemOdpMapDmaPages2014(u, at + 2 * P, P, { read: true, write: false }, seq)),
    );
    yield* ibUmemOdpRelease2014(u);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [2, 'EFAULT']);
});

test('unmap_dma_pages clears the slots of its range and dirties the pages the device could write', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const { u, at } = yield* umem(w, 2);
    yield* ibUmemOdpMapDmaPages2014(u, at, P, { read: true, write: true }, 0);
    yield* ibUmemOdpMapDmaPages2014(u, at + P, P, { read: true, write: false }, 0);
    const pages = [...u.slots.values()].map((s) => s.page);
    for (const p of pages) p.dirty = false;
    const range = rangeInit(w.server.mm!, 'CLEAR', at, at + 2 * P);
    yield* invalidateRangeStart(range);
    yield* ibUmemOdpUnmapDmaPages2014(u, at, at + 2 * P);
    seen.push(
      u.slots.size === 0,
      pages.map((p) => p.dirty),
    );
    yield* invalidateRangeEnd(range);
    yield* ibUmemOdpRelease2014(u);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [true, [true, false]]);
});

test('an invalidation of a umem raises its count at start (faults retry) and bumps the sequence at end', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const mr = yield* ibRegMr(
      w.server,
      w.sep.pd,
      yield* mapPages(w.server, 2, (i) => i),
      2 * P,
      ODP_ALL,
    );
    const u = mr.umem as UmemOdp2014;
    const mm = w.server.mm!;
    const range = rangeInit(mm, 'CLEAR', u.start, u.start + P);
    const seq = u.notifiersSeq;
    yield* invalidateRangeStart(range);
    seen.push(u.notifiersCount, u.notifierCompletion.isDone(), umemMmuNotifierRetry(u, seq));
    yield* invalidateRangeEnd(range);
    seen.push(u.notifiersCount, u.notifiersSeq - seq, u.notifierCompletion.isDone());
    yield* ibDeregMr(mr);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [1, false, true, 0, 1, true]);
});

test('a non-blockable start that meets a umem refuses (EAGAIN) and leaves the count and the lock as they were', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const mr = yield* ibRegMr(w.server, w.sep.pd, yield* mapPages(w.server, 1), P, ODP_ALL);
    const u = mr.umem as UmemOdp2014;
    const odp = w.sep.ctx.odp2014;
    const range = rangeInit(w.server.mm!, 'UNMAP', u.start, u.end, { blockable: false });
    seen.push(yield* invalidateRangeStartNonblock(range));
    seen.push(odp.notifierCount.peek(), u.notifiersCount, odp.umemRwsem.isLocked());
    yield* ibDeregMr(mr);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [-11, 0, 0, false]);
});

test('mutant odp.nonblock-start-leak: the refusing start keeps umem_rwsem, and the next registration deadlocks', () => {
  const r = runRdma(
    function* (w) {
      const at = yield* mapPages(w.server, 1);
      yield* ibRegMr(w.server, w.sep.pd, at, P, ODP_ALL);
      const range = rangeInit(w.server.mm!, 'UNMAP', at, at + P, { blockable: false });
      const reaper = w.k.spawn('reaper', () => invalidateRangeStartNonblock(range));
      yield* madvise(w.server.mm!, at, P, MADV_DONTNEED);
      void reaper;
      yield* ibRegMr(w.server, w.sep.pd, at, P, ODP_ALL);
    },
    { mutants: ['odp.nonblock-start-leak'] },
  );
  assert.ok(
    isKernelBug(r.bug, 'deadlock') || isKernelBug(r.bug, 'exit-holding-lock'),
    r.bug?.message,
  );
  assert.match(r.bug!.message, /umem_rwsem/);
});

test('release at exit marks every umem dying for good: faults fail with EFAULT instead of waiting', () => {
  const seen: unknown[] = [];
  runRdma(function* (w) {
    const { u, at } = yield* umem(w, 1);
    yield* cpuWriteU32(w.server.mm!, at, 5);
    yield* exitMm(w.server);
    seen.push(u.dying, u.notifiersCount, w.sep.ctx.odp2014.notifierCount.peek());
    seen.push(
      yield* outcome(
        ibUmemOdpMapDmaPages2014(u, at, P, { read: true, write: false }, u.notifiersSeq),
      ),
    );
  });
  assert.deepEqual(seen, [true, 1, 1, 'EINVAL']);
});

/** The owner exits with an ODP MR registered, then both verbs files close. */
function exitWithMr(options: Parameters<typeof runRdma>[1] = {}) {
  return runRdma(function* (w) {
    yield* ibRegMr(w.server, w.sep.pd, yield* mapPages(w.server, 1), P, ODP_ALL);
    // do_exit(): exit_mm() first, then exit_files() closes the verbs file, whose release
    // deregisters the MR and finds no mm to unregister the notifier from.
    yield* exitMm(w.server);
    yield* ibUverbsClose(w.sep.file);
    yield* exitMm(w.client);
    yield* ibUverbsClose(w.cep.file);
  }, options);
}

test('finding: the 2014 design leaks the mm_struct of an owner that exits with ODP MRs registered (no unregister without its mm)', () => {
  const r = exitWithMr();
  assert.ok(isKernelBug(r.bug, 'leak'), r.bug?.message);
  assert.match(r.bug!.message, /1 mms/);
});

/** The proposed fix of the exit leak on both devices of the world (IbDevice.fixOdp2014Exit). */
const fixedExit = {
  device: (m: Machine, name: string) => new Mlx5Device(m, { name, fixOdp2014Exit: true }),
};

test('fixOdp2014Exit: the same exit frees every mm (the release unregisters from the mm registered on)', () => {
  const r = exitWithMr(fixedExit);
  assert.equal(r.ok, true, r.bug?.message);
});

test('fixOdp2014Exit: an owner alive at the last deregistration gets ->release once and is unlinked, and its exit calls none', () => {
  let unlinked = false;
  const r = runRdma(function* (w) {
    const at = yield* mapPages(w.server, 1);
    const mr = yield* ibRegMr(w.server, w.sep.pd, at, P, ODP_ALL);
    const mm = w.server.mm!;
    yield* ibDeregMr(mr);
    unlinked = (mm.notifiers?.list.length ?? 0) === 0;
    yield* madvise(mm, at, P, MADV_DONTNEED);
    yield* ibUverbsClose(w.sep.file);
    yield* exitMm(w.server);
    yield* exitMm(w.client);
    yield* ibUverbsClose(w.cep.file);
  }, fixedExit);
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(unlinked, true);
  const releases = r.rec.events.filter(
    (e) => e.type === 'mn-callback' && e.client === 'rdma-odp-2014' && e.callback === 'release',
  );
  assert.equal(releases.length, 1);
});
