// The software RDMA device (rxe): ODP registration with its snapshot, copies that fault pages in
// synchronously, invalidations, the responder's NAKs and RNR, atomics, and the refusals
// (implicit ODP, prefetch through a key lookup_mr does not find).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IbDevice } from '../../../src/drivers/rdma/core/device.ts';
import {
  IB_UVERBS_ADVISE_MR_FLAG_FLUSH as FLUSH,
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_READ,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE as PREFETCH_WRITE,
  SIZE_MAX,
} from '../../../src/drivers/rdma/core/ib-verbs.ts';
import { ibAdviseMr, ibDeregMr, ibRegMr } from '../../../src/drivers/rdma/core/verbs.ts';
import { RxeDevice } from '../../../src/drivers/rdma/sw/rxe/main.ts';
import type { RxeMr } from '../../../src/drivers/rdma/sw/rxe/mr.ts';
import type { Co } from '../../../src/index.ts';
import { MADV_DONTNEED } from '../../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../../src/mm/cpu-access.ts';
import type { Machine } from '../../../src/mm/machine.ts';
import { madvise } from '../../../src/mm/madvise.ts';
import { munmap } from '../../../src/mm/munmap.ts';
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

const RXE = {
  odpDesign: 2020,
  device: (m: Machine, name: string) => new RxeDevice(m, { name: name.replace('mlx5_', 'rxe') }),
} as const;

/** Runs `body` on two rxe devices; asserts a clean run that finished. */
function runRxe(body: (w: RdmaWorld<IbDevice>) => Co): void {
  let done = false;
  const r = runRdma<IbDevice>(function* (w) {
    yield* body(w);
    done = true;
  }, RXE);
  assert.ok(r.ok, r.bug?.message);
  assert.ok(done);
}

/** What the umem maps per page: '-' nothing, 'r' read, 'w' write. */
function slots(mr: RxeMr): string {
  return slotString(mr.odp);
}

test('registration takes what the CPU maps (a snapshot); a remote WRITE faults the rest in, synchronously and without a NAK', () => {
  const seen: unknown[] = [];
  runRxe(function* (w) {
    const sbuf = yield* mapPages(w.server, 3, (i) => i + 1);
    yield* madvise(w.server.mm!, sbuf + P, 2 * P, MADV_DONTNEED);
    const smr = (yield* ibRegMr(w.server, w.sep.pd, sbuf, 3 * P, ODP_ALL)) as RxeMr;
    seen.push(slots(smr));
    const cbuf = yield* mapPages(w.client, 1, () => 42);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, IB_ACCESS_LOCAL_WRITE);
    const { c } = yield* connect(w);
    const wc = yield* post(c, {
      opcode: 'RDMA_WRITE',
      sgList: [{ addr: cbuf, length: 4, lkey: cmr.lkey }],
      remoteAddr: sbuf + 2 * P,
      rkey: smr.rkey,
    });
    seen.push(wc.status, slots(smr), yield* firstInt(w.server, sbuf + 2 * P));
    // An invalidation (DONTNEED) unmaps the slot; the next READ faults it back.
    yield* madvise(w.server.mm!, sbuf + 2 * P, P, MADV_DONTNEED);
    seen.push(slots(smr));
    const rd = yield* post(c, {
      opcode: 'RDMA_READ',
      sgList: [{ addr: cbuf, length: 4, lkey: cmr.lkey }],
      remoteAddr: sbuf,
      rkey: smr.rkey,
    });
    seen.push(rd.status, yield* firstInt(w.client, cbuf));
    yield* ibDeregMr(smr);
    yield* ibDeregMr(cmr);
  });
  assert.deepEqual(seen, ['w--', 'SUCCESS', 'w-w', 42, 'w--', 'SUCCESS', 1]);
});

test('the responder NAKs with a remote access error when a page cannot be had, and the QPs go to error', () => {
  const seen: unknown[] = [];
  runRxe(function* (w) {
    const sbuf = yield* mapPages(w.server, 2);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, 2 * P, ODP_ALL);
    yield* munmap(w.server.mm!, sbuf + P, P);
    const cbuf = yield* mapPages(w.client, 1);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, IB_ACCESS_LOCAL_WRITE);
    const { c, s } = yield* connect(w);
    const wc = yield* post(c, {
      opcode: 'RDMA_WRITE',
      sgList: [{ addr: cbuf, length: 4, lkey: cmr.lkey }],
      remoteAddr: sbuf + P,
      rkey: smr.rkey,
    });
    seen.push(wc.status, c.qp.state, s.qp.state);
    yield* ibDeregMr(smr);
    yield* ibDeregMr(cmr);
  });
  assert.deepEqual(seen, ['REM_ACCESS_ERR', 'ERR', 'ERR']);
});

test('a SEND without a posted receive is RNR-NAKed and retried; rnr_retry 0 gives up at once', () => {
  const seen: unknown[] = [];
  runRxe(function* (w) {
    const cbuf = yield* mapPages(w.client, 1);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, ODP_ALL);
    const { c } = yield* connect(w, { rnrRetry: 0 });
    const wc = yield* post(c, {
      opcode: 'SEND',
      sgList: [{ addr: cbuf, length: 8, lkey: cmr.lkey }],
    });
    seen.push(wc.status);
    yield* ibDeregMr(cmr);
  });
  assert.deepEqual(seen, ['RNR_RETRY_EXC_ERR']);
});

test('atomics on an ODP MR fault the page in for write; a misaligned one is an invalid request', () => {
  const seen: unknown[] = [];
  runRxe(function* (w) {
    const sbuf = yield* mapPages(w.server, 1);
    yield* cpuWriteU32(w.server.mm!, sbuf, 5);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, P, ODP_ALL);
    yield* madvise(w.server.mm!, sbuf, P, MADV_DONTNEED);
    const cbuf = yield* mapPages(w.client, 1);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, ODP_ALL);
    const { c } = yield* connect(w);
    const faa = (remoteAddr: number) =>
      post(c, {
        opcode: 'ATOMIC_FETCH_AND_ADD',
        sgList: [{ addr: cbuf, length: 8, lkey: cmr.lkey }],
        remoteAddr,
        rkey: smr.rkey,
        compareAdd: 3,
      });
    seen.push(
      (yield* faa(sbuf)).status,
      yield* firstInt(w.client, cbuf),
      yield* firstInt(w.server, sbuf),
    );
    seen.push((yield* faa(sbuf + 4)).status);
    yield* ibDeregMr(smr);
    yield* ibDeregMr(cmr);
  });
  // DONTNEED dropped the 5: the page came back zeroed.
  assert.deepEqual(seen, ['SUCCESS', 0, 3, 'REM_INV_REQ_ERR']);
});

test('refusals: implicit ODP, prefetch through an unknown key or an MR without local write (EINVAL, as lookup_mr finds none)', () => {
  const seen: unknown[] = [];
  runRxe(function* (w) {
    seen.push(yield* attempt(() => ibRegMr(w.server, w.sep.pd, 0, SIZE_MAX, ODP_ALL)));
    const at = yield* mapPages(w.server, 1);
    const ro = yield* ibRegMr(
      w.server,
      w.sep.pd,
      at,
      P,
      IB_ACCESS_REMOTE_READ | IB_ACCESS_ON_DEMAND | IB_ACCESS_LOCAL_WRITE,
    );
    const sg = (lkey: number) => [{ addr: at, length: P, lkey }];
    seen.push(yield* attempt(() => ibAdviseMr(w.sep.pd, PREFETCH_WRITE, FLUSH, sg(ro.lkey + 1))));
    const rdonly = yield* ibRegMr(
      w.server,
      w.sep.pd,
      at,
      P,
      IB_ACCESS_REMOTE_READ | IB_ACCESS_ON_DEMAND,
    );
    seen.push(yield* attempt(() => ibAdviseMr(w.sep.pd, PREFETCH_WRITE, FLUSH, sg(rdonly.lkey))));
    yield* ibDeregMr(ro);
    yield* ibDeregMr(rdonly);
  });
  assert.deepEqual(seen, ['EINVAL', 'EINVAL', 'EINVAL']);
});
