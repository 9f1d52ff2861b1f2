// Prefetch of ODP MRs (ibv_advise_mr on the current design): what each advice maps, the
// synchronous and the asynchronous path, and every error of the verb and the driver.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  IB_UVERBS_ADVISE_MR_FLAG_FLUSH as FLUSH,
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_READ,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT as NO_FAULT,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH as PREFETCH,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE as PREFETCH_WRITE,
} from '../../../src/drivers/rdma/core/ib-verbs.ts';
import type { IbMr } from '../../../src/drivers/rdma/core/objects.ts';
import { ibAdviseMr, ibAllocPd, ibDeregMr, ibRegMr } from '../../../src/drivers/rdma/core/verbs.ts';
import type { Mlx5Mr } from '../../../src/drivers/rdma/hw/mlx5/mr.ts';
import type { Co } from '../../../src/index.ts';
import { join } from '../../../src/kernel/context.ts';
import { MADV_DONTNEED } from '../../../src/mm/constants.ts';
import { madvise } from '../../../src/mm/madvise.ts';
import { attempt } from './io-kit.ts';
import { mapPages, ODP_ALL, P, type RdmaWorld, runRdma } from './kit.ts';

const CURRENT = { odpDesign: 2020 } as const;

/** An ODP MR of the server over `pages` fresh pages, all discarded (nothing mapped). */
function* emptyMr(w: RdmaWorld, pages: number, access = ODP_ALL): Co<{ mr: Mlx5Mr; at: number }> {
  const at = yield* mapPages(w.server, pages, (i) => i + 1);
  const mr = (yield* ibRegMr(w.server, w.sep.pd, at, pages * P, access)) as Mlx5Mr;
  yield* madvise(w.server.mm!, at, pages * P, MADV_DONTNEED);
  return { mr, at };
}

/** What the MR's MTT holds per page: '-' nothing, 'r' read, 'w' write. */
function mtt(mr: Mlx5Mr, at: number, pages: number): string {
  let out = '';
  for (let i = 0; i < pages; i++) {
    const t = mr.tt.lookup(mr.mm, at + i * P);
    out += t === undefined ? '-' : t.writable ? 'w' : 'r';
  }
  return out;
}

const sge = (mr: IbMr, addr: number, length: number) => [{ addr, length, lkey: mr.lkey }];

test('synchronous prefetch: PREFETCH_WRITE maps writable, PREFETCH read-only, PREFETCH_NO_FAULT only what the CPU maps', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const { mr, at } = yield* emptyMr(w, 3);
    yield* ibAdviseMr(w.sep.pd, PREFETCH, FLUSH, sge(mr, at, P));
    yield* ibAdviseMr(w.sep.pd, PREFETCH_WRITE, FLUSH, sge(mr, at + P, P));
    seen.push(mtt(mr, at, 3), w.sdev.stats.page_prefetch);
    // Page 2 is still not present in the CPU page table: NO_FAULT leaves it alone.
    yield* ibAdviseMr(w.sep.pd, NO_FAULT, FLUSH, sge(mr, at, 3 * P));
    seen.push(mtt(mr, at, 3));
    yield* ibDeregMr(mr);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, ['rw-', 2, 'rw-']);
});

test('asynchronous prefetch returns at once; its work maps later, and deregistration waits for it', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const { mr, at } = yield* emptyMr(w, 2);
    yield* ibAdviseMr(w.sep.pd, PREFETCH_WRITE, 0, sge(mr, at, 2 * P));
    seen.push(mtt(mr, at, 2), mr.usecount);
    // The work holds a reference: deregistration waits for it, then the MR is gone.
    const dereg = w.k.spawn('dereg', () => ibDeregMr(mr));
    yield* join(dereg);
    seen.push(mr.usecount, mr.destroyed, w.sdev.stats.page_prefetch);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, ['--', 1, 0, true, 2]);
});

test('advise_mr: EINVAL for unknown flags, an empty or malformed list; EOPNOTSUPP for another advice and on the 2014 design', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const { mr, at } = yield* emptyMr(w, 1);
    const pd = w.sep.pd;
    seen.push(yield* attempt(() => ibAdviseMr(pd, PREFETCH, 2, sge(mr, at, P))));
    seen.push(yield* attempt(() => ibAdviseMr(pd, PREFETCH, FLUSH, [])));
    seen.push(
      yield* attempt(() =>
        ibAdviseMr(pd, PREFETCH, FLUSH, [{ addr: -1, length: P, lkey: mr.lkey }]),
      ),
    );
    seen.push(yield* attempt(() => ibAdviseMr(pd, 3, FLUSH, sge(mr, at, P))));
    yield* ibDeregMr(mr);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  let old: unknown = '';
  const r2 = runRdma(function* (w) {
    const at = yield* mapPages(w.server, 1);
    const mr = yield* ibRegMr(w.server, w.sep.pd, at, P, ODP_ALL);
    old = yield* attempt(() => ibAdviseMr(w.sep.pd, PREFETCH, FLUSH, sge(mr, at, P)));
    yield* ibDeregMr(mr);
  });
  assert.ok(r2.ok, r2.bug?.message);
  assert.deepEqual([...seen, old], ['EINVAL', 'EINVAL', 'EINVAL', 'EOPNOTSUPP', 'EOPNOTSUPP']);
});

test('advise_mr: ENOENT for a key that is no ODP MR of the PD or a write prefetch of a read-only MR, EFAULT outside the MR; async errors come at once', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const { mr, at } = yield* emptyMr(w, 1);
    const ro = yield* emptyMr(w, 1, IB_ACCESS_REMOTE_READ | IB_ACCESS_ON_DEMAND);
    const pinned = yield* ibRegMr(w.server, w.sep.pd, at, P, IB_ACCESS_LOCAL_WRITE);
    const pd = w.sep.pd;
    const other = ibAllocPd(w.sep.ctx);
    seen.push(yield* attempt(() => ibAdviseMr(pd, PREFETCH, FLUSH, sge(pinned, at, P))));
    seen.push(yield* attempt(() => ibAdviseMr(other, PREFETCH, FLUSH, sge(mr, at, P))));
    seen.push(yield* attempt(() => ibAdviseMr(pd, PREFETCH_WRITE, FLUSH, sge(ro.mr, ro.at, P))));
    seen.push(yield* attempt(() => ibAdviseMr(pd, PREFETCH, FLUSH, sge(ro.mr, ro.at, P))));
    seen.push(yield* attempt(() => ibAdviseMr(pd, PREFETCH, FLUSH, sge(mr, at + P, P))));
    seen.push(yield* attempt(() => ibAdviseMr(pd, PREFETCH_WRITE, 0, sge(ro.mr, ro.at, P))));
    seen.push(String(mr.usecount + ro.mr.usecount));
    for (const m of [mr, ro.mr, pinned]) yield* ibDeregMr(m);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, ['ENOENT', 'ENOENT', 'ENOENT', 'ok', 'EFAULT', 'ENOENT', '0']);
});
