// Implicit ODP on the mlx5-like HCA, current design: one MR over the whole address space whose
// 1 GiB children are created on first fault, found by the hardware through the parent's KSM,
// reclaimed when an invalidation empties them, and freed with the parent; the tables stay
// sparse however large the span.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
  IB_UVERBS_ADVISE_MR_FLAG_FLUSH,
  SIZE_MAX,
} from '../../../src/drivers/rdma/core/ib-verbs.ts';
import { ibAdviseMr, ibDeregMr, ibRegMr } from '../../../src/drivers/rdma/core/verbs.ts';
import type { Mlx5Mr } from '../../../src/drivers/rdma/hw/mlx5/mr.ts';
import { pagefaultMr } from '../../../src/drivers/rdma/hw/mlx5/odp-current.ts';
import {
  MLX5_IMR_KSM_ENTRIES,
  MLX5_IMR_MTT_SIZE,
} from '../../../src/drivers/rdma/hw/mlx5/odp-implicit.ts';
import type { Co } from '../../../src/index.ts';
import { sleep } from '../../../src/kernel/context.ts';
import { TimedStrategy } from '../../../src/kernel/strategies/timed.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
} from '../../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../../src/mm/cpu-access.ts';
import { madvise } from '../../../src/mm/madvise.ts';
import { mmap } from '../../../src/mm/mmap.ts';
import type { Process } from '../../../src/mm/process.ts';
import { attempt } from './io-kit.ts';
import { connect, firstInt, ODP_ALL, P, post, type RdmaWorld, runRdma } from './kit.ts';

const CURRENT = { odpDesign: 2020 } as const;

/** One page mapped at `addr` of `proc`, holding `value`. */
function* pageAt(proc: Process, addr: number, value: number): Co<number> {
  const mm = proc.mm!;
  yield* mmap(mm, {
    addr,
    len: P,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
  });
  yield* cpuWriteU32(mm, addr, value);
  return addr;
}

/** An RDMA READ of 4 bytes at `remote` through `rkey` into the client's page `local`. */
function* readInt(
  w: RdmaWorld,
  local: { addr: number; lkey: number },
  remote: number,
  rkey: number,
) {
  const { c } = yield* connect(w);
  const wc = yield* post(c, {
    opcode: 'RDMA_READ',
    sgList: [{ addr: local.addr, length: 4, lkey: local.lkey }],
    remoteAddr: remote,
    rkey,
  });
  return wc.status === 'SUCCESS' ? yield* firstInt(w.client, local.addr) : wc.status;
}

test('remote reads through an implicit MR create one child per gigabyte touched, found through the KSM; nothing else is allocated', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const g = MLX5_IMR_MTT_SIZE;
    const a = yield* pageAt(w.server, 5 * g, 11);
    const b = yield* pageAt(w.server, 5 * g + 7 * P, 12);
    const c = yield* pageAt(w.server, 9 * g + 3 * P, 13);
    const imr = (yield* ibRegMr(w.server, w.sep.pd, 0, SIZE_MAX, ODP_ALL)) as Mlx5Mr;
    seen.push(imr.implicit!.children.size, imr.implicit!.ksm.size);
    const cbuf = yield* pageAt(w.client, 3 * g, 0);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, IB_ACCESS_LOCAL_WRITE);
    const local = { addr: cbuf, lkey: cmr.lkey };
    for (const at of [a, b, c]) seen.push(yield* readInt(w, local, at, imr.rkey));
    seen.push([...imr.implicit!.children.keys()].join(','), imr.implicit!.ksm.size);
    yield* ibDeregMr(imr);
    seen.push(imr.implicit!.children.size, imr.implicit!.ksm.size);
    yield* ibDeregMr(cmr);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, [0, 0, 11, 12, 13, '5,9', 2, 0, 0]);
});

test('a child an invalidation empties is reclaimed (out of the tables, freed by a work item) and made again on the next fault', () => {
  const seen: unknown[] = [];
  const r = runRdma(
    function* (w) {
      const at = yield* pageAt(w.server, 2 * MLX5_IMR_MTT_SIZE, 21);
      const imr = (yield* ibRegMr(w.server, w.sep.pd, 0, SIZE_MAX, ODP_ALL)) as Mlx5Mr;
      yield* ibAdviseMr(
        w.sep.pd,
        IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
        IB_UVERBS_ADVISE_MR_FLAG_FLUSH,
        [{ addr: at, length: P, lkey: imr.lkey }],
      );
      const child = imr.implicit!.children.get(2)!;
      seen.push(imr.implicit!.ksm.get(2) === child, (child.odp as { npages: number }).npages);
      yield* madvise(w.server.mm!, at, P, MADV_DONTNEED);
      seen.push(imr.implicit!.children.has(2));
      while (!child.destroyed) yield* sleep(1000);
      seen.push(imr.implicit!.ksm.has(2), imr.usecount);
      yield* cpuWriteU32(w.server.mm!, at, 22);
      const cbuf = yield* pageAt(w.client, 4 * MLX5_IMR_MTT_SIZE, 0);
      const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, IB_ACCESS_LOCAL_WRITE);
      seen.push(yield* readInt(w, { addr: cbuf, lkey: cmr.lkey }, at, imr.rkey));
      seen.push(imr.implicit!.children.get(2) !== child);
      yield* ibDeregMr(imr);
      yield* ibDeregMr(cmr);
    },
    { ...CURRENT, strategy: new TimedStrategy() },
  );
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, [true, 1, false, false, 0, 22, true]);
});

test('pagefault_mr of an implicit MR beyond the address space is EFAULT', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const imr = (yield* ibRegMr(w.server, w.sep.pd, 0, SIZE_MAX, ODP_ALL)) as Mlx5Mr;
    seen.push(MLX5_IMR_KSM_ENTRIES * MLX5_IMR_MTT_SIZE === TASK_SIZE);
    seen.push(yield* attempt(() => pagefaultMr(imr, TASK_SIZE, P)));
    seen.push(yield* attempt(() => pagefaultMr(imr, TASK_SIZE - P, 2 * P)));
    yield* ibDeregMr(imr);
  }, CURRENT);
  assert.ok(r.ok, r.bug?.message);
  assert.deepEqual(seen, [true, 'EFAULT', 'EFAULT']);
});
