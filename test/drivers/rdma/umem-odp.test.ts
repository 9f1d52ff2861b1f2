// The current ODP core (umem_odp.c since 5.10) and mlx5's paths over it: registration on an
// interval notifier, map_dma_and_lock (fault and snapshot, returning with umem_mutex held, the
// non-invalidating read-only → writable rewrite), unmap, the invalidate op, and deregistration
// waiting for the lookups in flight.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
} from '../../../src/drivers/rdma/core/ib-verbs.ts';
import {
  ibUmemOdpAllocChild,
  ibUmemOdpAllocImplicit,
  ibUmemOdpGet,
  ibUmemOdpMapDmaAndLock,
  ibUmemOdpRelease,
  ibUmemOdpUnmapDmaPages,
  type UmemOdp,
} from '../../../src/drivers/rdma/core/umem-odp.ts';
import { ibUverbsClose } from '../../../src/drivers/rdma/core/uverbs.ts';
import { ibDeregMr, ibRegMr } from '../../../src/drivers/rdma/core/verbs.ts';
import type { Mlx5Mr } from '../../../src/drivers/rdma/hw/mlx5/mr.ts';
import {
  mlx5IbInvalidateRange,
  mlx5MnOps,
  mlx5rDerefOdpMkey,
  mlx5rGetOdpMkey,
} from '../../../src/drivers/rdma/hw/mlx5/odp-current.ts';
import type { Co } from '../../../src/index.ts';
import { join, sleep } from '../../../src/kernel/context.ts';
import { MADV_DONTNEED, PROT_READ } from '../../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../../src/mm/cpu-access.ts';
import { madvise } from '../../../src/mm/madvise.ts';
import { mprotect } from '../../../src/mm/mprotect.ts';
import { exitMm } from '../../../src/mm/process.ts';
import { attempt } from './io-kit.ts';
import {
  connect,
  firstInt,
  mapPages,
  ODP_ALL,
  P,
  post,
  type RdmaWorld,
  runRdma,
  slotString,
} from './kit.ts';

const CURRENT = { odpDesign: 2020 } as const;

/** A umem of `pages` pages over fresh memory of the server, filled with i + 1 per page. */
function* umemOf(w: RdmaWorld, pages: number): Co<{ u: UmemOdp; at: number }> {
  const at = yield* mapPages(w.server, pages, (i) => i + 1);
  const u = yield* ibUmemOdpGet(w.sep.ctx, w.server, at, pages * P, true, mlx5MnOps(w.sdev));
  return { u, at };
}

test('ib_umem_odp_get subscribes the aligned range; an empty range is EINVAL, an overflowing one EOVERFLOW, a caller without an mm EINVAL', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const at = yield* mapPages(w.server, 2);
    const u = yield* ibUmemOdpGet(w.sep.ctx, w.server, at + 100, P, true, mlx5MnOps(w.sdev));
    seen.push(u.start === at, u.end === at + 2 * P, u.notifier?.start === at, u.numPages);
    const ops = mlx5MnOps(w.sdev);
    seen.push(yield* attempt(() => ibUmemOdpGet(w.sep.ctx, w.server, at, 0, true, ops)));
    seen.push(
      yield* attempt(() =>
        ibUmemOdpGet(w.sep.ctx, w.server, Number.MAX_SAFE_INTEGER - P, 2 * P, true, ops),
      ),
    );
    yield* ibUmemOdpRelease(u);
    seen.push(u.notifier?.removed);
    yield* exitMm(w.client);
    seen.push(yield* attempt(() => ibUmemOdpGet(w.cep.ctx, w.client, at, P, true, ops)));
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, [true, true, true, 2, 'EINVAL', 'EOVERFLOW', true, 'EINVAL']);
});

test('map_dma_and_lock faults the range in and returns with umem_mutex held; a snapshot takes only present pages with their CPU rights', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const { u, at } = yield* umemOf(w, 4);
    const np = yield* ibUmemOdpMapDmaAndLock(u, at, 2 * P, { read: true, write: true }, true);
    seen.push(np, u.umemMutex.owner?.name, u.npages, u.slots.get(0)?.write);
    u.umemMutex.unlock();
    // Page 2 is discarded: a snapshot over all four maps pages 0, 1 and 3 only.
    yield* madvise(w.server.mm!, at + 2 * P, P, MADV_DONTNEED);
    yield* ibUmemOdpMapDmaAndLock(u, at, 4 * P, { read: true, write: false }, false);
    seen.push(slotString(u), u.npages);
    ibUmemOdpUnmapDmaPages(u, at, at + 4 * P);
    seen.push(u.npages);
    u.umemMutex.unlock();
    yield* ibUmemOdpRelease(u);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, [2, 'main', 2, true, 'ww-w', 3, 0]);
});

test('a mapped slot is rewritten in place when its rights change without an invalidation (read-only → writable)', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const { u, at } = yield* umemOf(w, 1);
    yield* ibUmemOdpMapDmaAndLock(u, at, P, { read: true, write: false }, true);
    const slot = u.slots.get(0);
    u.umemMutex.unlock();
    yield* ibUmemOdpMapDmaAndLock(u, at, P, { read: true, write: true }, true);
    seen.push(u.slots.get(0) === slot, slot?.write, u.npages);
    u.umemMutex.unlock();
    yield* ibUmemOdpRelease(u);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, [true, true, 1]);
});

test('map_dma_and_lock: EINVAL for an empty mask or a gone owner, EFAULT outside the umem, EPERM for a write fault of a read-only mapping (unlocked)', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const { u, at } = yield* umemOf(w, 2);
    const map =
      (va: number, n: number, write: boolean, read = true) =>
      () =>
        ibUmemOdpMapDmaAndLock(u, va, n, { read, write }, true);
    seen.push(yield* attempt(map(at, P, false, false)));
    seen.push(yield* attempt(map(at + P, 2 * P, false)));
    yield* mprotect(w.server.mm!, at, P, PROT_READ);
    seen.push(yield* attempt(map(at, P, true)), u.umemMutex.owner);
    yield* ibUmemOdpRelease(u);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, ['EINVAL', 'EFAULT', 'EPERM', null]);
});

test('implicit umems are anchors; children need an implicit root and a live mm', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const root = ibUmemOdpAllocImplicit(w.sep.ctx, w.server, true);
    seen.push(root.isImplicitOdp, root.notifier, root.numPages);
    const at = yield* mapPages(w.server, 2);
    const child = yield* ibUmemOdpAllocChild(root, at, 2 * P, mlx5MnOps(w.sdev));
    seen.push(child.isImplicitOdp, child.numPages, child.owningMm === root.owningMm);
    seen.push(yield* attempt(() => ibUmemOdpAllocChild(child, at, P, mlx5MnOps(w.sdev))));
    yield* ibUmemOdpRelease(child);
    yield* ibUmemOdpRelease(root);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, [true, null, 0, false, 2, true, 'EINVAL']);
});

test('the invalidate op refuses a non-blockable range, and otherwise zaps and unmaps under umem_mutex', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const at = yield* mapPages(w.server, 2, (i) => i);
    const mr = (yield* ibRegMr(w.server, w.sep.pd, at, 2 * P, ODP_ALL)) as Mlx5Mr;
    const u = mr.odp as UmemOdp;
    // Registration mapped the present pages (a snapshot).
    seen.push(u.npages, mr.tt.count(mr.mm));
    const range = { start: at, end: at + P, blockable: false };
    seen.push(yield* mlx5IbInvalidateRange(w.sdev, u, range, u.notifier!.invalidateSeq + 2));
    // A real invalidation: DONTNEED of page 0.
    yield* madvise(w.server.mm!, at, P, MADV_DONTNEED);
    seen.push(u.npages, mr.tt.count(mr.mm), w.sdev.stats.page_invalidations);
    yield* ibDeregMr(mr);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, [2, 2, false, 1, 1, 1]);
});

test('deregistration stops new lookups at once and waits for the ones in flight', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const at = yield* mapPages(w.server, 1);
    const mr = (yield* ibRegMr(w.server, w.sep.pd, at, P, ODP_ALL)) as Mlx5Mr;
    const held = mlx5rGetOdpMkey(w.sdev, mr.lkey);
    seen.push(held === mr, mr.usecount);
    const dereg = w.k.spawn('dereg', () => ibDeregMr(mr));
    // Runs once dereg waits for the usecount: the MR can no longer be found, nor is it gone.
    w.k.spawn('fault', function* () {
      seen.push(mlx5rGetOdpMkey(w.sdev, mr.lkey), mr.destroyed);
      mlx5rDerefOdpMkey(mr);
      yield* sleep(0);
    });
    yield* join(dereg);
    seen.push(mr.destroyed, mr.usecount);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, [true, 1, null, false, true, 0]);
});

test('end to end on the current design: remote WRITEs and READs fault ODP pages in, DONTNEED drops them, the data stays', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const sbuf = yield* mapPages(w.server, 2, (i) => 10 + i);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, 2 * P, ODP_ALL);
    yield* madvise(w.server.mm!, sbuf, 2 * P, MADV_DONTNEED);
    const cbuf = yield* mapPages(w.client, 1);
    const cmr = yield* ibRegMr(
      w.client,
      w.cep.pd,
      cbuf,
      P,
      IB_ACCESS_LOCAL_WRITE | IB_ACCESS_ON_DEMAND,
    );
    const { c } = yield* connect(w, { minRnrTimer: 1 });
    yield* cpuWriteU32(w.client.mm!, cbuf, 77);
    const wc = yield* post(c, {
      opcode: 'RDMA_WRITE',
      sgList: [{ addr: cbuf, length: 4, lkey: cmr.lkey }],
      remoteAddr: sbuf + P,
      rkey: smr.rkey,
    });
    seen.push(wc.status, yield* firstInt(w.server, sbuf + P), yield* firstInt(w.server, sbuf));
    seen.push(w.sdev.stats.page_faults > 0);
    yield* ibDeregMr(smr);
    yield* ibDeregMr(cmr);
    yield* ibUverbsClose(w.sep.file);
    yield* ibUverbsClose(w.cep.file);
    yield* exitMm(w.server);
    yield* exitMm(w.client);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, ['SUCCESS', 77, 0, true]);
});
