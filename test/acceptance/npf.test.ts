// Lesokhin et al., "Page Fault Support for Network Controllers" (ASPLOS 2017), reproduced on
// the model (odpsim study npf). P1, P2, P4 and P5 follow from the cost table's calibration;
// P3, P6, P7 and P8 must emerge from the model's mechanics, so each is checked against a
// changed cost table too: an emergent result moves with the mechanism, not with a constant.
// Memory sizes (P7, P8) at scale 1024: an 8 MiB machine, 3 MiB processes, 1 MiB buffers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COSTS } from '../../src/cost/table.ts';
import type { NpfData } from '../../src/study/npf.ts';
import { PAPER, studyNpf } from '../../src/study/npf.ts';
import {
  measureFaults,
  measureInvalidations,
  measureMemory,
  measureRnrStall,
} from '../../src/study/npf-worlds.ts';

const near = (model: number, paper: number, tolerance = 0.1) =>
  Math.abs(model - paper) <= paper * tolerance;
const µs = (ns: number) => ns / 1000;

const faults = measureFaults({});

test('P1, P2, P5: a one-page minor device fault ≈220 µs, one over 1024 pages ≈350 µs, the spread of Table 4', () => {
  assert.ok(near(µs(faults.oneMean), PAPER.p1), `P1 ${µs(faults.oneMean)} µs`);
  assert.ok(near(µs(faults.manyOnce), PAPER.p2), `P2 ${µs(faults.manyOnce)} µs`);
  const q = faults.quantiles;
  for (const [model, paper] of [
    [q.p50, PAPER.p5.p50],
    [q.p95, PAPER.p5.p95],
  ] as const)
    assert.ok(near(µs(model), paper), `P5 ${µs(model)} µs against ${paper}`);
  // The tail of a thousand draws moves with the seed; it stays in the paper's range.
  assert.ok(near(µs(q.p99), PAPER.p5.p99, 0.25) && q.max <= PAPER.p5.max * 1000);
});

test('P3 (emergent): 1024 pages faulted one per request take > 220 ms, ≥ 600× one fault over all', () => {
  assert.ok(faults.manyOneByOne > PAPER.p3Ms * 1e6, `${faults.manyOneByOne} ns`);
  assert.ok(faults.manyOneByOne >= PAPER.p3Ratio * faults.manyOnce);
  // It is the per-fault path that adds up: halve the fixed part of one fault (the resume) and
  // the total falls by about 1024 halves, while the one big fault falls by one.
  const resume = COSTS['mlx5.pf.resume'].base;
  const faster = measureFaults({ costs: { 'mlx5.pf.resume': { base: resume / 2 } } });
  const saved = faults.manyOneByOne - faster.manyOneByOne;
  assert.ok(near(saved, 1024 * (resume / 2), 0.05), `saved ${saved} ns`);
  assert.ok(near(faults.manyOnce - faster.manyOnce, resume / 2, 0.05));
});

test('P4: invalidating 1 / 1024 pages the HCA maps adds ≈17 / 61 µs; pages it never mapped add nothing', () => {
  const inv = measureInvalidations({});
  assert.ok(near(µs(inv.one), PAPER.p4One), `${µs(inv.one)} µs`);
  assert.ok(near(µs(inv.many), PAPER.p4Many), `${µs(inv.many)} µs`);
  assert.ok(inv.unmappedExtra < 1000, `${inv.unmappedExtra} ns`);
});

test('P6 (emergent): a responder fault under min_rnr_timer 0 stalls 655 ms; rnr_retry 7 completes, 0 errors', () => {
  const forever = measureRnrStall({}, 7);
  assert.equal(forever.status, 'SUCCESS');
  assert.ok(forever.rnrNaks >= 1);
  assert.ok(forever.ns >= PAPER.p6Ms * 1e6 && forever.ns < PAPER.p6Ms * 1e6 + 5e6, `${forever.ns}`);
  assert.equal(measureRnrStall({}, 0).status, 'RNR_RETRY_EXC_ERR');
  // The stall is the timer's, whatever the fault costs: a tenfold trigger changes nothing.
  const slow = measureRnrStall({ costs: { 'mlx5.pf.trigger': { base: 1_240_000 } } }, 7);
  assert.equal(slow.ns, forever.ns);
});

test('P7, P8 (emergent): pinning fails where RAM runs out, at the third process and before the server has its buffers; ODP runs', () => {
  const m = measureMemory({}, 1024);
  assert.equal(m.ramBytes, 8 << 20);
  assert.deepEqual(m.pinnedProcesses.slice(0, 3), ['ok', 'ok', 'ENOMEM']);
  assert.deepEqual(m.odpProcesses, ['ok', 'ok', 'ok', 'ok']);
  // Ten buffers of an eighth of RAM each: the ninth at the latest cannot be pinned.
  const at = /^ENOMEM at buffer (\d+)$/.exec(m.pinnedServer);
  assert.ok(at !== null && Number(at[1]) <= 9, m.pinnedServer);
  assert.equal(m.odpServer, 'ok');
});

test('the same seed gives the same timings; other seeds draw other fault times, and every calibrated and emergent claim holds for them', () => {
  const again = measureFaults({});
  assert.deepEqual(again, faults);
  const other = measureFaults({ seed: 2 });
  assert.notDeepEqual(other.onePage, faults.onePage);
  for (const seed of [2, 99, 12345]) {
    const rows = studyNpf({ seed, scale: 1024 }).tables[0]!.rows;
    assert.deepEqual(
      rows.filter((row) => row[3] !== 'yes'),
      [],
      `seed ${seed}`,
    );
  }
});

test('odpsim study npf: every claim holds at scale 1024, and the table says so', () => {
  const r = studyNpf({ scale: 1024 });
  const rows = r.tables[0]!.rows;
  assert.deepEqual(
    rows.map((row) => row[0]!.slice(0, 2)).filter((p) => p.startsWith('P')),
    ['P1', 'P2', 'P3', 'P4', 'P5', 'P6', 'P7', 'P8'],
  );
  assert.deepEqual(r.tables[0]!.header, ['claim', 'paper', 'model', 'holds']);
  for (const row of rows) {
    assert.equal(row.length, 4, row.join(' | '));
    assert.equal(row[3], 'yes', row.join(' | '));
  }
  const d = r.data as NpfData;
  assert.equal(d.faults.onePage.length, 1000);
  assert.equal(r.charts[0]!.series[0]!.points.length, 100, 'a symbol per percentile');
});
