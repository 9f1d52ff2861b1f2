// rdma-core's tests/test_odp.py, ported: a client and a server process on RC queue pairs with
// ODP MRs over buffers the test maps; 100 iterations, each discarding both buffers
// (MADV_DONTNEED) first so that every iteration faults, and checking the data every time. Each
// test runs on every device and ODP design; where the device does not advertise the feature,
// the test checks that it is refused, as upstream skips on the same condition.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IbDevice } from '../../src/drivers/rdma/core/device.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ODP_SUPPORT_IMPLICIT,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
  IB_UVERBS_ADVISE_MR_FLAG_FLUSH,
  SIZE_MAX,
} from '../../src/drivers/rdma/core/ib-verbs.ts';
import type { IbMr, IbSge } from '../../src/drivers/rdma/core/objects.ts';
import {
  ibAdviseMr,
  ibDeregMr,
  ibPostRecv,
  ibQueryDeviceEx,
  ibRegMr,
  ibWaitCq,
} from '../../src/drivers/rdma/core/verbs.ts';
import type { OdpDesign } from '../../src/drivers/rdma/hw/mlx5/main.ts';
import { RxeDevice } from '../../src/drivers/rdma/sw/rxe/main.ts';
import { type Co, isErrno } from '../../src/index.ts';
import { MADV_DONTNEED } from '../../src/mm/constants.ts';
import { cpuRead, cpuWrite } from '../../src/mm/cpu-access.ts';
import type { Machine } from '../../src/mm/machine.ts';
import { madvise } from '../../src/mm/madvise.ts';
import type { Process } from '../../src/mm/process.ts';
import type { QpEnd } from '../../src/scenarios/rdma-kit.ts';
import { attempt } from '../drivers/rdma/io-kit.ts';
import {
  connect,
  mapPages,
  ODP_ALL,
  P,
  post,
  type RdmaWorld,
  runRdma,
} from '../drivers/rdma/kit.ts';

/** test_odp.py's iteration count and message size. */
const ITERS = 100;
const MSG = 1024;

/** A device the suite runs on. */
interface DeviceKind {
  readonly label: string;
  readonly design: OdpDesign;
  readonly device?: (machine: Machine, name: string) => IbDevice;
}

/** The devices the suite runs on: the hardware-like one in both designs, and the software one. */
const DEVICES: readonly DeviceKind[] = [
  { label: 'mlx5, 2014 design', design: 2014 },
  { label: 'mlx5, current design', design: 2020 },
  {
    label: 'rxe',
    design: 2020,
    device: (m, name) => new RxeDevice(m, { name: name.replace('mlx5_', 'rxe') }),
  },
];

/** One side's ODP buffer and MR (OdpRC's resources). */
interface Side {
  readonly proc: Process;
  readonly buf: number;
  readonly mr: IbMr;
}

/** The two sides, connected. */
interface Pair {
  readonly w: RdmaWorld<IbDevice>;
  readonly client: Side;
  readonly server: Side;
  readonly c: QpEnd;
  readonly s: QpEnd;
}

/** A message of `MSG` bytes of `value`. */
function msg(value: number): Uint8Array {
  return new Uint8Array(MSG).fill(value & 0xff);
}

/** Runs `body` on a connected client/server pair of ODP MRs on `kind`; asserts a clean run. */
function runPair(kind: DeviceKind, body: (p: Pair) => Co): void {
  let done = false;
  const r = runRdma<IbDevice>(
    function* (w) {
      const side = function* (proc: Process, pd: typeof w.sep.pd) {
        const buf = yield* mapPages(proc, 1);
        return { proc, buf, mr: yield* ibRegMr(proc, pd, buf, P, ODP_ALL) };
      };
      const client = yield* side(w.client, w.cep.pd);
      const server = yield* side(w.server, w.sep.pd);
      const { c, s } = yield* connect(w, { minRnrTimer: 1 });
      yield* body({ w, client, server, c, s });
      yield* ibDeregMr(client.mr);
      yield* ibDeregMr(server.mr);
      done = true;
    },
    {
      odpDesign: kind.design,
      ...(kind.device === undefined ? {} : { device: kind.device }),
    },
  );
  assert.ok(r.ok, r.bug?.message);
  assert.ok(done, 'the test body did not finish');
}

/** force_page_faults: both buffers discarded, so the next access faults. */
function* forcePageFaults(p: Pair): Co {
  for (const side of [p.client, p.server])
    yield* madvise(side.proc.mm!, side.buf, P, MADV_DONTNEED);
}

/** traffic(): the client SENDs `sgList`'s bytes, the server receives them in its ODP buffer. */
function* sendRecv(p: Pair, sgList: readonly IbSge[], iter: number, expected: Uint8Array): Co {
  ibPostRecv(p.s.qp, {
    wrId: iter,
    sgList: [{ addr: p.server.buf, length: P, lkey: p.server.mr.lkey }],
  });
  const wc = yield* post(p.c, { opcode: 'SEND', sgList });
  const [rwc] = yield* ibWaitCq(p.s.cq);
  assert.equal(wc.status, 'SUCCESS', `iteration ${iter}: send ${wc.status}`);
  assert.equal(rwc?.status, 'SUCCESS', `iteration ${iter}: recv ${rwc?.status}`);
  const got = yield* cpuRead(p.server.proc.mm!, p.server.buf, expected.length);
  assert.deepEqual(got, expected, `iteration ${iter}: the server received other bytes`);
}

/** ODP send/recv traffic: 100 iterations of forced faults, fresh data each time. */
function* odpTraffic(p: Pair, before?: (p: Pair) => Co): Co {
  for (let i = 0; i < ITERS; i++) {
    yield* forcePageFaults(p);
    yield* cpuWrite(p.client.proc.mm!, p.client.buf, msg(i + 1));
    if (before !== undefined) yield* before(p);
    yield* sendRecv(
      p,
      [{ addr: p.client.buf, length: MSG, lkey: p.client.mr.lkey }],
      i,
      msg(i + 1),
    );
  }
}

/** A prefetch of both buffers with `advice`, synchronously; EOPNOTSUPP where unsupported. */
function prefetchBoth(advice: number) {
  return function* (p: Pair): Co {
    for (const [side, pd] of [
      [p.client, p.w.cep.pd],
      [p.server, p.w.sep.pd],
    ] as const)
      yield* ibAdviseMr(pd, advice, IB_UVERBS_ADVISE_MR_FLAG_FLUSH, [
        { addr: side.buf, length: MSG, lkey: side.mr.lkey },
      ]);
  };
}

/** Whether the device prefetches; when it does not, checks that it says so (EOPNOTSUPP). */
function* prefetchSupported(p: Pair): Co<boolean> {
  try {
    yield* prefetchBoth(IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH)(p);
    return true;
  } catch (e) {
    if (isErrno(e, 'EOPNOTSUPP')) return false;
    throw e;
  }
}

for (const kind of DEVICES) {
  const { label, design } = kind;
  const noPrefetch = design === 2014 ? ', refused: the 2014 driver has no ibv_advise_mr' : '';
  const implicitNote =
    kind.device === undefined && design !== 2014 ? '' : ', refused: no IB_ODP_SUPPORT_IMPLICIT';
  test(`test_odp_rc_traffic (${label})`, () => {
    runPair(kind, (p) => odpTraffic(p));
  });

  test(`test_odp_rc_mixed_mr: two SGEs, one ODP and one pinned MR (${label})`, () => {
    runPair(kind, function* (p) {
      const pinnedBuf = yield* mapPages(p.client.proc, 1);
      const pinned = yield* ibRegMr(p.client.proc, p.w.cep.pd, pinnedBuf, P, IB_ACCESS_LOCAL_WRITE);
      const half = MSG / 2;
      for (let i = 0; i < ITERS; i++) {
        yield* forcePageFaults(p);
        yield* cpuWrite(p.client.proc.mm!, p.client.buf, msg(2 * i + 1).subarray(0, half));
        yield* cpuWrite(p.client.proc.mm!, pinnedBuf, msg(2 * i + 2).subarray(0, half));
        const expected = new Uint8Array(MSG);
        expected.fill((2 * i + 1) & 0xff, 0, half);
        expected.fill((2 * i + 2) & 0xff, half);
        yield* sendRecv(
          p,
          [
            { addr: p.client.buf, length: half, lkey: p.client.mr.lkey },
            { addr: pinnedBuf, length: half, lkey: pinned.lkey },
          ],
          i,
          expected,
        );
      }
      yield* ibDeregMr(pinned);
    });
  });

  test(`test_odp_rc_atomic_fetch_and_add (${label})`, () => {
    runPair(kind, function* (p) {
      yield* cpuWrite(p.server.proc.mm!, p.server.buf, new Uint8Array(8));
      for (let i = 0; i < ITERS; i++) {
        // Only the client's buffer is discarded: the server's holds the running sum.
        yield* madvise(p.client.proc.mm!, p.client.buf, P, MADV_DONTNEED);
        const wc = yield* post(p.c, {
          opcode: 'ATOMIC_FETCH_AND_ADD',
          sgList: [{ addr: p.client.buf, length: 8, lkey: p.client.mr.lkey }],
          remoteAddr: p.server.buf,
          rkey: p.server.mr.rkey,
          compareAdd: 1,
        });
        assert.equal(wc.status, 'SUCCESS');
        const old = yield* cpuRead(p.client.proc.mm!, p.client.buf, 4);
        assert.equal(
          new DataView(old.buffer).getInt32(0, true),
          i,
          `iteration ${i}: fetched value`,
        );
      }
      const sum = yield* cpuRead(p.server.proc.mm!, p.server.buf, 4);
      assert.equal(new DataView(sum.buffer).getInt32(0, true), ITERS);
    });
  });

  test(`test_odp_rc_rdma_read: the server's buffer pre-filled (${label})`, () => {
    runPair(kind, function* (p) {
      for (let i = 0; i < ITERS; i++) {
        yield* forcePageFaults(p);
        yield* cpuWrite(p.server.proc.mm!, p.server.buf, msg(i + 7));
        const wc = yield* post(p.c, {
          opcode: 'RDMA_READ',
          sgList: [{ addr: p.client.buf, length: MSG, lkey: p.client.mr.lkey }],
          remoteAddr: p.server.buf,
          rkey: p.server.mr.rkey,
        });
        assert.equal(wc.status, 'SUCCESS', `iteration ${i}: ${wc.status}`);
        assert.deepEqual(yield* cpuRead(p.client.proc.mm!, p.client.buf, MSG), msg(i + 7));
      }
    });
  });

  test(`test_odp_rc_rdma_write (${label})`, () => {
    runPair(kind, function* (p) {
      for (let i = 0; i < ITERS; i++) {
        yield* forcePageFaults(p);
        yield* cpuWrite(p.client.proc.mm!, p.client.buf, msg(i + 3));
        const wc = yield* post(p.c, {
          opcode: 'RDMA_WRITE',
          sgList: [{ addr: p.client.buf, length: MSG, lkey: p.client.mr.lkey }],
          remoteAddr: p.server.buf,
          rkey: p.server.mr.rkey,
        });
        assert.equal(wc.status, 'SUCCESS', `iteration ${i}: ${wc.status}`);
        assert.deepEqual(yield* cpuRead(p.server.proc.mm!, p.server.buf, MSG), msg(i + 3));
      }
    });
  });

  test(`test_odp_implicit_rc_traffic (${label}${implicitNote})`, () => {
    runPair(kind, function* (p) {
      const caps = ibQueryDeviceEx(p.w.sdev).odpCaps;
      const reg = (side: Side, pd: typeof p.w.sep.pd) => () =>
        ibRegMr(side.proc, pd, 0, SIZE_MAX, ODP_ALL);
      if (!(caps.generalCaps & IB_ODP_SUPPORT_IMPLICIT)) {
        // Upstream skips; the device must refuse it.
        assert.equal(yield* attempt(reg(p.server, p.w.sep.pd)), 'EINVAL');
        return;
      }
      const cmr = (yield* reg(p.client, p.w.cep.pd)()) as IbMr;
      const smr = (yield* reg(p.server, p.w.sep.pd)()) as IbMr;
      yield* odpTraffic({
        ...p,
        client: { ...p.client, mr: cmr },
        server: { ...p.server, mr: smr },
      });
      yield* ibDeregMr(cmr);
      yield* ibDeregMr(smr);
    });
  });

  test(`test_odp_sync_prefetch_rc_traffic: PREFETCH then PREFETCH_WRITE with FLUSH before each send (${label}${noPrefetch})`, () => {
    runPair(kind, function* (p) {
      if (!(yield* prefetchSupported(p))) {
        assert.equal(design, 2014, 'only the 2014 driver lacks ibv_advise_mr');
        return;
      }
      yield* odpTraffic(p, function* (q) {
        yield* prefetchBoth(IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH)(q);
        yield* prefetchBoth(IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE)(q);
      });
    });
  });

  test(`test_odp_prefetch_sync_no_page_fault_rc_traffic (${label}${noPrefetch})`, () => {
    runPair(kind, function* (p) {
      if (!(yield* prefetchSupported(p))) {
        assert.equal(design, 2014, 'only the 2014 driver lacks ibv_advise_mr');
        return;
      }
      yield* odpTraffic(p, prefetchBoth(IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT));
    });
  });
}
