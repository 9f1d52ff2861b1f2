// The mlx5-like HCA and its driver: RC operations end to end through ODP and pinned MRs, the
// completion statuses of RC errors and retries, page faults and their resumes, QP state
// changes, and the deregistration order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IbWcStatus } from '../../../src/drivers/rdma/core/ib-verbs.ts';
import {
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_READ,
} from '../../../src/drivers/rdma/core/ib-verbs.ts';
import {
  ibDeregMr,
  ibModifyQp,
  ibPostRecv,
  ibPostSend,
  ibRegMr,
  ibWaitCq,
} from '../../../src/drivers/rdma/core/verbs.ts';
import type { Mlx5Mr } from '../../../src/drivers/rdma/hw/mlx5/mr.ts';
import { mlx5MkeyLookup } from '../../../src/drivers/rdma/hw/mlx5/mr.ts';
import type { Mlx5Qp } from '../../../src/drivers/rdma/hw/mlx5/qp.ts';
import { PROT_READ } from '../../../src/mm/constants.ts';
import { cpuRead, cpuWrite } from '../../../src/mm/cpu-access.ts';
import { mprotect } from '../../../src/mm/mprotect.ts';
import { munmap } from '../../../src/mm/munmap.ts';
import { eventsOf } from '../../mm/helpers.ts';
import { connect, firstInt, mapPages, ODP_ALL, P, PINNED_ALL, post, runRdma } from './kit.ts';

test('WRITE, READ, fetch-and-add, compare-and-swap and a two-SGE SEND move the right bytes through ODP MRs', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const sbuf = yield* mapPages(w.server, 4, (i) => 10 + i);
    const cbuf = yield* mapPages(w.client, 4, (i) => 20 + i);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, 4 * P, ODP_ALL);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, 4 * P, ODP_ALL);
    const { c, s } = yield* connect(w);
    const local = (i: number, length = P) => ({ addr: cbuf + i * P, length, lkey: cmr.lkey });
    yield* post(c, {
      opcode: 'RDMA_WRITE',
      sgList: [local(0)],
      remoteAddr: sbuf + P,
      rkey: smr.rkey,
    });
    seen.push(yield* firstInt(w.server, sbuf + P));
    yield* post(c, {
      opcode: 'RDMA_READ',
      sgList: [local(1)],
      remoteAddr: sbuf + 2 * P,
      rkey: smr.rkey,
    });
    seen.push(yield* firstInt(w.client, cbuf + P));
    yield* cpuWrite(w.server.mm!, sbuf, new Uint8Array(16));
    yield* post(c, {
      opcode: 'ATOMIC_FETCH_AND_ADD',
      sgList: [local(2, 8)],
      remoteAddr: sbuf,
      rkey: smr.rkey,
      compareAdd: 7,
    });
    yield* post(c, {
      opcode: 'ATOMIC_CMP_AND_SWP',
      sgList: [local(2, 8)],
      remoteAddr: sbuf,
      rkey: smr.rkey,
      compareAdd: 7,
      swap: 9,
    });
    seen.push(yield* firstInt(w.client, cbuf + 2 * P), yield* firstInt(w.server, sbuf));
    ibPostRecv(s.qp, { wrId: 5, sgList: [{ addr: sbuf + 2 * P, length: 2 * P, lkey: smr.lkey }] });
    const wc = yield* post(c, { opcode: 'SEND', sgList: [local(3, 8), local(0, 8)] });
    const [rwc] = yield* ibWaitCq(s.cq);
    seen.push(wc.status, rwc!.status, rwc!.byteLen);
    const got = yield* cpuRead(w.server.mm!, sbuf + 2 * P, 16);
    seen.push(Array.from(new Int32Array(got.buffer)));
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [20, 12, 7, 9, 'SUCCESS', 'SUCCESS', 16, [23, 23, 20, 20]]);
});

test('a first touch faults (RNR or requester stall, then a resume); the second touch does not', () => {
  const r = runRdma(function* (w) {
    const sbuf = yield* mapPages(w.server, 1, () => 1);
    const cbuf = yield* mapPages(w.client, 1, () => 2);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, P, ODP_ALL);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, ODP_ALL);
    const { c } = yield* connect(w);
    for (let i = 0; i < 2; i++)
      yield* post(c, {
        opcode: 'RDMA_WRITE',
        sgList: [{ addr: cbuf, length: P, lkey: cmr.lkey }],
        remoteAddr: sbuf,
        rkey: smr.rkey,
      });
  });
  assert.equal(r.ok, true, r.bug?.message);
  const faults = eventsOf(r.rec, 'rdma-pagefault');
  assert.deepEqual(
    faults.map((e) => `${e.dev} ${e.subtype} ${e.requester}`),
    ['mlx5_0 wqe true', 'mlx5_1 rdma false'],
  );
  assert.equal(eventsOf(r.rec, 'rdma-resume').length, 2);
  assert.equal(eventsOf(r.rec, 'rdma-nak').filter((e) => e.kind === 'rnr').length, 1);
});

/** Runs one operation on a fresh connection; returns its completion status and the QP states after. */
function outcome(
  op: 'bad-rkey' | 'bad-lkey' | 'misaligned' | 'no-recv' | 'dead-peer' | 'unmapped' | 'readonly-mr',
): { status: IbWcStatus; states: string } {
  let status: IbWcStatus = 'SUCCESS';
  let states = '';
  const r = runRdma(function* (w) {
    const sbuf = yield* mapPages(w.server, 2, () => 1);
    const cbuf = yield* mapPages(w.client, 1, () => 2);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, 2 * P, ODP_ALL);
    const ro = yield* ibRegMr(w.server, w.sep.pd, sbuf, P, IB_ACCESS_REMOTE_READ);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, ODP_ALL);
    const { c, s } = yield* connect(w, { rnrRetry: 2, retryCnt: 1, minRnrTimer: 1 });
    const sg = [{ addr: cbuf, length: 8, lkey: op === 'bad-lkey' ? cmr.lkey + 1 : cmr.lkey }];
    if (op === 'dead-peer') yield* ibModifyQp(s.qp, { state: 'ERR' });
    if (op === 'unmapped') yield* munmap(w.server.mm!, sbuf + P, P);
    const wc = yield* post(c, {
      opcode:
        op === 'no-recv' ? 'SEND' : op === 'misaligned' ? 'ATOMIC_FETCH_AND_ADD' : 'RDMA_WRITE',
      sgList: sg,
      remoteAddr: op === 'misaligned' ? sbuf + 4 : op === 'unmapped' ? sbuf + P : sbuf,
      rkey: op === 'bad-rkey' ? smr.rkey ^ 0x100 : op === 'readonly-mr' ? ro.rkey : smr.rkey,
      compareAdd: 1,
    });
    status = wc.status;
    states = `${c.qp.state} ${s.qp.state}`;
  });
  assert.equal(r.ok, true, r.bug?.message);
  return { status, states };
}

test('RC errors: remote access, local protection, invalid request, RNR and transport retries exhausted', () => {
  assert.deepEqual(outcome('bad-rkey'), { status: 'REM_ACCESS_ERR', states: 'ERR ERR' });
  assert.deepEqual(outcome('readonly-mr'), { status: 'REM_ACCESS_ERR', states: 'ERR ERR' });
  assert.deepEqual(outcome('bad-lkey'), { status: 'LOC_PROT_ERR', states: 'ERR RTS' });
  assert.deepEqual(outcome('misaligned'), { status: 'REM_INV_REQ_ERR', states: 'ERR ERR' });
  assert.deepEqual(outcome('no-recv'), { status: 'RNR_RETRY_EXC_ERR', states: 'ERR RTS' });
  assert.deepEqual(outcome('dead-peer'), { status: 'RETRY_EXC_ERR', states: 'ERR ERR' });
  // An ODP fault on an unmapped address resumes with an error: a remote access error.
  assert.deepEqual(outcome('unmapped'), { status: 'REM_ACCESS_ERR', states: 'ERR ERR' });
});

test('an error moves the QP to ERR and flushes the WQEs behind it; rnr_retry 7 waits for a receive for ever', () => {
  const seen: string[] = [];
  const r = runRdma(function* (w) {
    const sbuf = yield* mapPages(w.server, 1, () => 1);
    const cbuf = yield* mapPages(w.client, 1, () => 2);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, P, ODP_ALL);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, ODP_ALL);
    const { c, s } = yield* connect(w, { rnrRetry: 7, minRnrTimer: 1 });
    const sg = [{ addr: cbuf, length: 8, lkey: cmr.lkey }];
    ibPostSend(c.qp, { wrId: 1, opcode: 'SEND', sgList: sg });
    w.k.spawn('late-recv', function* () {
      for (let i = 0; i < 20; i++) yield;
      ibPostRecv(s.qp, { wrId: 9, sgList: [{ addr: sbuf, length: P, lkey: smr.lkey }] });
    });
    seen.push((yield* ibWaitCq(c.cq))[0]!.status);
    ibPostSend(c.qp, { wrId: 2, opcode: 'RDMA_WRITE', sgList: sg, remoteAddr: sbuf, rkey: 0x99 });
    ibPostSend(c.qp, {
      wrId: 3,
      opcode: 'RDMA_WRITE',
      sgList: sg,
      remoteAddr: sbuf,
      rkey: smr.rkey,
    });
    for (let n = 0; n < 2; n++) {
      const [wc] = yield* ibWaitCq(c.cq);
      seen.push(`${wc!.wrId}:${wc!.status}`);
    }
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, ['SUCCESS', '2:REM_ACCESS_ERR', '3:WR_FLUSH_ERR']);
});

test('a retransmitted atomic is applied once: the responder answers a repeated PSN from its cache', () => {
  let value = 0;
  const r = runRdma(function* (w) {
    const sbuf = yield* mapPages(w.server, 1, () => 0);
    const cbuf = yield* mapPages(w.client, 1, () => 0);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, P, ODP_ALL);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, ODP_ALL);
    const { c } = yield* connect(w);
    // The client's result page was never faulted: the response arrives, the scatter faults,
    // and the request goes out again with the same PSN.
    const wc = yield* post(c, {
      opcode: 'ATOMIC_FETCH_AND_ADD',
      sgList: [{ addr: cbuf, length: 8, lkey: cmr.lkey }],
      remoteAddr: sbuf,
      rkey: smr.rkey,
      compareAdd: 1,
    });
    assert.equal(wc.status, 'SUCCESS');
    value = yield* firstInt(w.server, sbuf);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(value, 1);
  assert.ok(eventsOf(r.rec, 'rdma-pagefault').some((e) => e.requester === true));
});

test('a pinned MR reaches its pages without faults, and keeps them after munmap', () => {
  const seen: unknown[] = [];
  const r = runRdma(function* (w) {
    const sbuf = yield* mapPages(w.server, 1, () => 42);
    const cbuf = yield* mapPages(w.client, 1, () => 0);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, P, PINNED_ALL);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, PINNED_ALL);
    const { c } = yield* connect(w);
    yield* munmap(w.server.mm!, sbuf, P);
    const wc = yield* post(c, {
      opcode: 'RDMA_READ',
      sgList: [{ addr: cbuf, length: P, lkey: cmr.lkey }],
      remoteAddr: sbuf,
      rkey: smr.rkey,
    });
    seen.push(wc.status, yield* firstInt(w.client, cbuf), w.server.mm!.pinnedVm);
    yield* ibDeregMr(smr);
    seen.push(w.server.mm!.pinnedVm);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, ['SUCCESS', 42, 1, 0]);
  assert.equal(eventsOf(r.rec, 'rdma-pagefault').length, 0);
  assert.ok(eventsOf(r.rec, 'dev-dma').length >= 2);
});

test('modify to ERR disables page faults: a fault raised before is handled or dropped, and the QP flushes', () => {
  const r = runRdma(function* (w) {
    const sbuf = yield* mapPages(w.server, 1, () => 1);
    const cbuf = yield* mapPages(w.client, 1, () => 2);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, P, ODP_ALL);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, ODP_ALL);
    const { c } = yield* connect(w);
    ibPostSend(c.qp, {
      wrId: 1,
      opcode: 'RDMA_WRITE',
      sgList: [{ addr: cbuf, length: P, lkey: cmr.lkey }],
      remoteAddr: sbuf,
      rkey: smr.rkey,
    });
    yield;
    yield* ibModifyQp(c.qp, { state: 'ERR' });
    assert.equal((c.qp as Mlx5Qp).disablePageFaults, true);
    assert.equal(w.cdev.pfWq.busy, 0);
    const [wc] = yield* ibWaitCq(c.cq);
    assert.equal(wc!.status, 'WR_FLUSH_ERR');
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('dereg: the MR stops resolving, its translations are zapped and the table retired, then the key is gone', () => {
  const r = runRdma(function* (w) {
    const sbuf = yield* mapPages(w.server, 2, () => 1);
    const cbuf = yield* mapPages(w.client, 1, () => 2);
    const smr = (yield* ibRegMr(w.server, w.sep.pd, sbuf, 2 * P, ODP_ALL)) as Mlx5Mr;
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, ODP_ALL);
    const { c } = yield* connect(w);
    yield* post(c, {
      opcode: 'RDMA_READ',
      sgList: [{ addr: cbuf, length: P, lkey: cmr.lkey }],
      remoteAddr: sbuf,
      rkey: smr.rkey,
    });
    assert.equal(smr.tt.count(smr.mm), 1);
    yield* ibDeregMr(smr);
    assert.equal(smr.live, false);
    assert.equal(smr.tt.count(smr.mm), 0);
    assert.equal(mlx5MkeyLookup(w.sdev, smr.rkey), null);
    const wc = yield* post(c, {
      opcode: 'RDMA_READ',
      sgList: [{ addr: cbuf, length: P, lkey: cmr.lkey }],
      remoteAddr: sbuf,
      rkey: smr.rkey,
    });
    assert.equal(wc.status, 'REM_ACCESS_ERR');
  });
  assert.equal(r.ok, true, r.bug?.message);
  const name = 'mlx5_1/mr101';
  const order = r.rec.events
    .filter(
      (e) =>
        ((e.type === 'dev-unmap' || e.type === 'dev-retire') && e.dev === name) ||
        (e.type === 'obj-free' && e.obj === name),
    )
    .map((e) => e.type);
  assert.deepEqual(order.slice(-3), ['dev-unmap', 'dev-retire', 'obj-free']);
});

test('a writable ODP MR cannot be faulted on a read-only mapping, even for a READ (the fault asks for write)', () => {
  let status = '';
  const r = runRdma(function* (w) {
    const sbuf = yield* mapPages(w.server, 1, () => 1);
    const cbuf = yield* mapPages(w.client, 1, () => 2);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, P, ODP_ALL);
    const ro = yield* ibRegMr(
      w.server,
      w.sep.pd,
      sbuf,
      P,
      IB_ACCESS_REMOTE_READ | IB_ACCESS_ON_DEMAND,
    );
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, ODP_ALL);
    yield* mprotect(w.server.mm!, sbuf, P, PROT_READ);
    const { c } = yield* connect(w);
    const read = (rkey: number) =>
      post(c, {
        opcode: 'RDMA_READ',
        sgList: [{ addr: cbuf, length: 4, lkey: cmr.lkey }],
        remoteAddr: sbuf,
        rkey,
      });
    const good = yield* read(ro.rkey);
    const bad = yield* read(smr.rkey);
    status = `${good.status} ${bad.status}`;
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(status, 'SUCCESS REM_ACCESS_ERR');
});
