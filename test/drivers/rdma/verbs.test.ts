// The verbs a process calls: every bad argument is an Errno naming what was wrong, and the
// objects' lifetimes (PD and CQ in use, QP states, closed files) are enforced.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  IB_ACCESS_HUGETLB,
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_WRITE,
} from '../../../src/drivers/rdma/core/ib-verbs.ts';
import type { IbSendWr } from '../../../src/drivers/rdma/core/objects.ts';
import {
  ibUverbsClose,
  ibUverbsGetContext,
  ibUverbsOpen,
} from '../../../src/drivers/rdma/core/uverbs.ts';
import {
  ibAllocPd,
  ibCreateCq,
  ibCreateQp,
  ibDeallocPd,
  ibDeregMr,
  ibDestroyCq,
  ibDestroyQp,
  ibModifyQp,
  ibPollCq,
  ibPostRecv,
  ibPostSend,
  ibQueryDeviceEx,
  ibRegMr,
} from '../../../src/drivers/rdma/core/verbs.ts';
import { NO_ODP_CAPS } from '../../../src/drivers/rdma/hw/mlx5/main.ts';
import { type Co, isErrno } from '../../../src/index.ts';
import { munmap } from '../../../src/mm/munmap.ts';
import { connect, mapPages, ODP_ALL, P, PINNED_ALL, runRdma } from './kit.ts';

/** The errno code (and message) of a call, or 'ok'. */
function* code(f: () => unknown): Co<string> {
  try {
    const r = f();
    if (r !== null && typeof r === 'object' && Symbol.iterator in r && 'next' in r)
      yield* r as Co<unknown>;
    return 'ok';
  } catch (e) {
    if (isErrno(e)) return e.code;
    throw e;
  }
}

test('reg_mr rejects unknown flags, remote write without local write, empty and overflowing ranges, ODP without support', () => {
  const seen: string[] = [];
  const r = runRdma(
    function* (w) {
      const at = yield* mapPages(w.server, 1);
      const reg = (addr: number, len: number, access: number) => () =>
        ibRegMr(w.server, w.sep.pd, addr, len, access);
      seen.push(yield* code(reg(at, P, IB_ACCESS_HUGETLB)));
      seen.push(yield* code(reg(at, P, IB_ACCESS_REMOTE_WRITE)));
      seen.push(yield* code(reg(at, 0, IB_ACCESS_LOCAL_WRITE)));
      seen.push(yield* code(reg(Number.MAX_SAFE_INTEGER, P, IB_ACCESS_LOCAL_WRITE)));
      seen.push(yield* code(reg(-1, P, IB_ACCESS_LOCAL_WRITE)));
      seen.push(yield* code(reg(at, P, 1.5)));
      seen.push(yield* code(reg(at, P, IB_ACCESS_ON_DEMAND)));
      seen.push(yield* code(() => ibRegMr({} as never, w.sep.pd, at, P, 0)));
      seen.push(yield* code(reg(at + 100 * P, P, IB_ACCESS_LOCAL_WRITE)));
    },
    { serverCaps: NO_ODP_CAPS },
  );
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EOPNOTSUPP',
    'EINVAL',
    'EFAULT',
  ]);
});

test('a pinned MR is charged to RLIMIT_MEMLOCK (ENOMEM past it, none with CAP_IPC_LOCK); a failed one pins nothing', () => {
  const seen: unknown[] = [];
  const limited = runRdma(
    function* (w) {
      const at = yield* mapPages(w.server, 4);
      seen.push(yield* code(() => ibRegMr(w.server, w.sep.pd, at, 3 * P, PINNED_ALL)));
      seen.push(w.server.mm!.pinnedVm);
      seen.push(yield* code(() => ibRegMr(w.server, w.sep.pd, at, 2 * P, PINNED_ALL)));
      seen.push(w.server.mm!.pinnedVm);
    },
    { serverProcess: { rlimitMemlock: 2 * P } },
  );
  assert.equal(limited.ok, true, limited.bug?.message);
  assert.deepEqual(seen, ['ENOMEM', 0, 'ok', 2]);
  const seen2: unknown[] = [];
  const admin = runRdma(
    function* (w) {
      const at = yield* mapPages(w.server, 4);
      seen2.push(yield* code(() => ibRegMr(w.server, w.sep.pd, at, 4 * P, PINNED_ALL)));
      seen2.push(w.server.mm!.pinnedVm);
      const hole = yield* mapPages(w.server, 2, () => 1);
      yield* munmap(w.server.mm!, hole + P, P);
      seen2.push(yield* code(() => ibRegMr(w.server, w.sep.pd, hole, 2 * P, PINNED_ALL)));
      seen2.push(w.server.mm!.pinnedVm, w.server.mm!.pte(hole)?.page?.pins);
    },
    { serverProcess: { rlimitMemlock: 0, capIpcLock: true } },
  );
  assert.equal(admin.ok, true, admin.bug?.message);
  assert.deepEqual(seen2, ['ok', 4, 'EFAULT', 4, 0]);
});

test('PD and CQ in use cannot go (EBUSY); objects go once; a closed file refuses everything (EBADF)', () => {
  const seen: string[] = [];
  const r = runRdma(function* (w) {
    const ctx = w.sep.ctx;
    const pd = ibAllocPd(ctx);
    const cq = ibCreateCq(ctx, 16);
    const qp = yield* ibCreateQp(pd, { sendCq: cq, recvCq: cq });
    const mr = yield* ibRegMr(w.server, pd, yield* mapPages(w.server, 1), P, ODP_ALL);
    seen.push(yield* code(() => ibDeallocPd(pd)), yield* code(() => ibDestroyCq(cq)));
    yield* ibDestroyQp(qp);
    seen.push(yield* code(() => ibDestroyQp(qp)));
    yield* ibDeregMr(mr);
    seen.push(yield* code(() => ibDeregMr(mr)));
    seen.push(yield* code(() => ibDestroyCq(cq)), yield* code(() => ibDestroyCq(cq)));
    seen.push(yield* code(() => ibDeallocPd(pd)), yield* code(() => ibDeallocPd(pd)));
    seen.push(yield* code(() => ibCreateCq(ctx, 0)));
    seen.push(yield* code(() => ibCreateQp(w.sep.pd, { sendCq: cq, recvCq: cq })));
    const file = yield* ibUverbsOpen(w.sdev);
    yield* ibUverbsGetContext(file, w.server);
    seen.push(yield* code(() => ibUverbsGetContext(file, w.server)));
    yield* ibUverbsClose(file);
    seen.push(yield* code(() => ibUverbsClose(file)));
    seen.push(yield* code(() => ibUverbsGetContext(file, w.server)));
    yield* ibUverbsClose(w.sep.file);
    seen.push(yield* code(() => ibAllocPd(ctx)));
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [
    'EBUSY',
    'EBUSY',
    'EINVAL',
    'EINVAL',
    'ok',
    'EINVAL',
    'ok',
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EBADF',
    'EBADF',
    'EBADF',
  ]);
});

test('modify_qp follows RESET→INIT→RTR→RTS; RTR needs a peer; timers and counters are range-checked', () => {
  const seen: string[] = [];
  const r = runRdma(function* (w) {
    const cq = ibCreateCq(w.sep.ctx, 16);
    const qp = yield* ibCreateQp(w.sep.pd, { sendCq: cq, recvCq: cq });
    const peer = yield* ibCreateQp(w.sep.pd, { sendCq: cq, recvCq: cq });
    const m = (attr: Parameters<typeof ibModifyQp>[1]) => () => ibModifyQp(qp, attr);
    seen.push(yield* code(m({ state: 'RTS' })));
    seen.push(yield* code(m({ state: 'INIT' })));
    seen.push(yield* code(m({ state: 'RTR' })));
    seen.push(yield* code(m({ state: 'RTR', dest: peer, minRnrTimer: 32 })));
    seen.push(yield* code(m({ state: 'RTR', dest: peer })));
    seen.push(yield* code(m({ state: 'RTS', rnrRetry: 8 })));
    seen.push(yield* code(m({ state: 'RTS', dest: peer })));
    seen.push(yield* code(m({ state: 'RTS', timeout: 14, retryCnt: 7, rnrRetry: 7 })));
    seen.push(yield* code(m({ state: 'BOGUS' as never })));
    seen.push(yield* code(m({ state: 'ERR' })), yield* code(m({ state: 'RTS' })));
    seen.push(yield* code(m({ state: 'RESET' })), qp.state);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [
    'EINVAL',
    'ok',
    'EINVAL',
    'EINVAL',
    'ok',
    'EINVAL',
    'EINVAL',
    'ok',
    'EINVAL',
    'ok',
    'EINVAL',
    'ok',
    'RESET',
  ]);
});

test('post_send and post_recv check the WR and the QP state; a full queue is ENOMEM; poll counts must be positive', () => {
  const seen: string[] = [];
  const r = runRdma(function* (w) {
    const cq = ibCreateCq(w.sep.ctx, 4);
    const idle = yield* ibCreateQp(w.sep.pd, { sendCq: cq, recvCq: cq, maxRecvWr: 1 });
    const sg = [{ addr: 0x10000, length: 8, lkey: 1 }];
    const send = (wr: Partial<IbSendWr>) => () =>
      ibPostSend(idle, { wrId: 1, opcode: 'SEND', sgList: sg, ...wr } as IbSendWr);
    seen.push(yield* code(send({})));
    seen.push(yield* code(() => ibPostRecv(idle, { wrId: 1, sgList: sg })));
    const { c } = yield* connect(w);
    const post = (wr: Partial<IbSendWr>) => () =>
      ibPostSend(c.qp, { wrId: 1, opcode: 'SEND', sgList: sg, ...wr } as IbSendWr);
    seen.push(yield* code(post({ opcode: 'NOPE' as never })));
    seen.push(yield* code(post({ sgList: Array.from({ length: 9 }, () => sg[0]!) })));
    seen.push(yield* code(post({ opcode: 'RDMA_WRITE' })));
    seen.push(
      yield* code(post({ opcode: 'ATOMIC_CMP_AND_SWP', remoteAddr: 0, rkey: 1, compareAdd: 1 })),
    );
    seen.push(yield* code(post({ sgList: [{ addr: -5, length: 8, lkey: 1 }] })));
    seen.push(yield* code(post({ wrId: 1.5 })));
    seen.push(yield* code(() => ibPollCq(cq, 0)));
    yield* ibModifyQp(idle, { state: 'INIT' });
    seen.push(yield* code(() => ibPostRecv(idle, { wrId: 1, sgList: sg })));
    seen.push(yield* code(() => ibPostRecv(idle, { wrId: 2, sgList: sg })));
    seen.push(yield* code(() => ibPostRecv(idle, { wrId: 1, sgList: 'x' as never })));
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'EINVAL',
    'ok',
    'ENOMEM',
    'EINVAL',
  ]);
});

test('query_device_ex reports the ODP capabilities of spec §5 (RC every opcode, UD send, no implicit yet)', () => {
  let caps: unknown = null;
  runRdma(function* (w) {
    caps = ibQueryDeviceEx(w.sdev).odpCaps;
  });
  assert.deepEqual(caps, {
    generalCaps: 1,
    perTransportCaps: { rc: 0b111111, uc: 0, ud: 0b100001, xrc: 0b111111 },
  });
});
