// The cost table: every entry says what it charges and where its value comes from, its shape is
// consistent (a per-unit part has a unit, quantiles do not decrease), and the HCA's fault path
// adds up to the paper it is calibrated to (Lesokhin et al. ASPLOS 2017, Figure 3 and Table 4).
//
// The calibration is computed from the table's entries: a fixed base is its value; a drawn
// base is the exact mean of its distribution (linear between the quantiles, as quantileAt draws
// it). A second test checks the same sums against the mean of CostModel draws.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CostModel } from '../../src/cost/model.ts';
import {
  COST_NAMES,
  COSTS,
  type CostEntry,
  type CostName,
  type CostQuantiles,
  type CostUnit,
} from '../../src/cost/table.ts';

const UNITS: readonly CostUnit[] = ['page', 'byte', 'entry'];

const entries = (): [CostName, CostEntry][] => COST_NAMES.map((n) => [n, COSTS[n] as CostEntry]);

/** The mean of the piecewise-linear distribution quantileAt draws from, ns. */
function quantileMean(q: CostQuantiles): number {
  const pts: [number, number][] = [
    [0, q.min],
    [0.5, q.p50],
    [0.95, q.p95],
    [0.99, q.p99],
    [1, q.max],
  ];
  let mean = 0;
  for (let i = 1; i < pts.length; i++) {
    const [u0, v0] = pts[i - 1]!;
    const [u1, v1] = pts[i]!;
    mean += ((v0 + v1) / 2) * (u1 - u0);
  }
  return mean;
}

/** The expected cost of one `name` operation over `pages` pages, from the entry, ns. */
function expected(name: CostName, pages: number): number {
  const e: CostEntry = COSTS[name];
  const base = typeof e.base === 'number' ? e.base : quantileMean(e.base);
  return base + (e.perUnit ?? 0) * Math.max(0, pages - 1);
}

/** The mean of `n` CostModel draws of `name` over `pages` pages, ns. */
function drawnMean(name: CostName, pages: number, n: number, seed = 7): number {
  const m = new CostModel(seed);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += m.draw(name, pages);
  return sum / n;
}

const FAULT_PARTS: readonly CostName[] = [
  'mlx5.pf.trigger',
  'mlx5.pf.driver',
  'mlx5.umr',
  'mlx5.pf.resume',
];
const INVALIDATION_PARTS: readonly CostName[] = ['mlx5.umr', 'mlx5.invalidate'];

function assertWithin(actual: number, target: number, fraction: number, what: string): void {
  assert.ok(
    Math.abs(actual - target) <= target * fraction,
    `${what}: ${actual} ns is not within ${fraction * 100}% of ${target} ns`,
  );
}

test('COST_NAMES lists every entry of the table, in table order', () => {
  assert.deepEqual(COST_NAMES, Object.keys(COSTS));
  assert.ok(COST_NAMES.length > 10);
  for (const name of COST_NAMES) assert.match(name, /^[a-z0-9]+(\.[a-z0-9]+)+$/, name);
});

test('every entry says what it charges and where its value comes from', () => {
  for (const [name, e] of entries()) {
    assert.equal(typeof e.what, 'string', name);
    assert.equal(typeof e.source, 'string', name);
    assert.ok(e.what.trim().length > 0, `${name}: empty what`);
    assert.ok(e.source.trim().length > 0, `${name}: empty source`);
  }
});

test('a per-unit part has a unit (page, byte or entry) and a unit has a per-unit part', () => {
  let withUnit = 0;
  for (const [name, e] of entries()) {
    assert.equal(e.perUnit === undefined, e.unit === undefined, `${name}: perUnit and unit`);
    if (e.perUnit === undefined) continue;
    withUnit++;
    assert.ok(UNITS.includes(e.unit!), `${name}: unit ${String(e.unit)}`);
    assert.ok(Number.isFinite(e.perUnit) && e.perUnit >= 0, `${name}: perUnit ${e.perUnit}`);
  }
  assert.ok(withUnit >= 4, 'the HCA costs and the wire grow with the operation');
});

test('bases are finite, non-negative, at least their min; quantiles never decrease', () => {
  let drawn = 0;
  for (const [name, e] of entries()) {
    const min = e.min ?? 0;
    assert.ok(Number.isFinite(min) && min >= 0, `${name}: min ${min}`);
    if (typeof e.base === 'number') {
      assert.ok(Number.isFinite(e.base) && e.base >= min, `${name}: base ${e.base}`);
      continue;
    }
    drawn++;
    const q = e.base;
    const seq = [q.min, q.p50, q.p95, q.p99, q.max];
    for (const v of seq) assert.ok(Number.isFinite(v) && v >= min, `${name}: quantile ${v}`);
    for (let i = 1; i < seq.length; i++)
      assert.ok(seq[i]! >= seq[i - 1]!, `${name}: quantiles decrease: ${seq.join(', ')}`);
    assert.ok(q.max > q.min, `${name}: a drawn cost that does not vary`);
  }
  assert.ok(drawn >= 1, 'mlx5.pf.trigger is drawn');
  assert.equal(typeof COSTS['mlx5.pf.trigger'].base, 'object');
});

test('hmm.retry may not be set below 1 ns (a livelock must reach its timeout)', () => {
  const e: CostEntry = COSTS['hmm.retry'];
  assert.equal(e.min, 1);
});

test('a 1-page HCA fault (trigger + driver + UMR + resume) is ~220 µs, Figure 3', () => {
  const total = FAULT_PARTS.reduce((s, n) => s + expected(n, 1), 0);
  assertWithin(total, 220_000, 0.1, '1-page fault');
  // The parts themselves, Figure 3: 128, 5, 7, 80 µs (trigger as its mean).
  assertWithin(expected('mlx5.pf.trigger', 1), 128_000, 0.1, 'trigger');
  assertWithin(expected('mlx5.pf.driver', 1), 5_000, 0.1, 'driver');
  assertWithin(expected('mlx5.umr', 1), 7_000, 0.1, 'umr');
  assertWithin(expected('mlx5.pf.resume', 1), 80_000, 0.1, 'resume');
});

test('a 1024-page HCA fault is ~356 µs, Figure 3 (153 + 107 + 18 + 78 µs)', () => {
  const total = FAULT_PARTS.reduce((s, n) => s + expected(n, 1024), 0);
  assertWithin(total, 356_000, 0.1, '1024-page fault');
  assertWithin(expected('mlx5.pf.trigger', 1024), 153_000, 0.1, 'trigger');
  assertWithin(expected('mlx5.pf.driver', 1024), 107_000, 0.01, 'driver');
  assertWithin(expected('mlx5.umr', 1024), 18_000, 0.01, 'umr');
  assertWithin(expected('mlx5.pf.resume', 1024), 78_000, 0.1, 'resume');
  // What grows with the pages is the figure's difference between its two bars.
  assertWithin(
    expected('mlx5.pf.trigger', 1024) - expected('mlx5.pf.trigger', 1),
    25_000,
    0.01,
    'trigger growth',
  );
});

test("the 4 KiB fault's spread is Table 4's: p50 215, p95 250, p99 261, max 464 µs", () => {
  const trigger = COSTS['mlx5.pf.trigger'].base;
  const fixed =
    expected('mlx5.pf.driver', 1) + expected('mlx5.umr', 1) + expected('mlx5.pf.resume', 1);
  const table4: CostQuantiles = { min: 0, p50: 215_000, p95: 250_000, p99: 261_000, max: 464_000 };
  for (const key of ['p50', 'p95', 'p99', 'max'] as const)
    assertWithin(trigger[key] + fixed, table4[key], 0.01, key);
});

test('an invalidation (UMR + invalidate) is ~17 µs for 1 page and ~61 µs for 1024 pages', () => {
  const one = INVALIDATION_PARTS.reduce((s, n) => s + expected(n, 1), 0);
  const many = INVALIDATION_PARTS.reduce((s, n) => s + expected(n, 1024), 0);
  assertWithin(one, 17_000, 0.1, '1-page invalidation');
  assertWithin(many, 61_000, 0.1, '1024-page invalidation');
});

test('the same sums hold for the mean of 20,000 CostModel draws of each part', () => {
  const n = 20_000;
  const fault = (pages: number) => FAULT_PARTS.reduce((s, c) => s + drawnMean(c, pages, n), 0);
  const inval = (pages: number) =>
    INVALIDATION_PARTS.reduce((s, c) => s + drawnMean(c, pages, n), 0);
  assertWithin(fault(1), 220_000, 0.1, 'drawn 1-page fault');
  assertWithin(fault(1024), 356_000, 0.1, 'drawn 1024-page fault');
  assertWithin(inval(1), 17_000, 0.1, 'drawn 1-page invalidation');
  assertWithin(inval(1024), 61_000, 0.1, 'drawn 1024-page invalidation');
  // The draws agree with the distribution's exact mean (1%: sampling error of 20,000 draws).
  assertWithin(drawnMean('mlx5.pf.trigger', 1, n), expected('mlx5.pf.trigger', 1), 0.01, 'mean');
});
