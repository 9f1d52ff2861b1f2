// The cost model of one run: exact draws of fixed costs with their per-page and per-byte growth,
// the tally, seeded quantile draws that follow the table's distribution, overrides, and the
// EINVAL of a bad override (naming the cost).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CostModel,
  type CostOverrides,
  checkCostName,
  quantileAt,
  resolveCosts,
} from '../../src/cost/model.ts';
import { COSTS, type CostName, type CostQuantiles } from '../../src/cost/table.ts';
import { einval } from './einval.ts';

const draws = (m: CostModel, name: CostName, n: number, units = 1): number[] =>
  Array.from({ length: n }, () => m.draw(name, units));

/** The empirical q-quantile of sorted values (nearest rank). */
const empirical = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;

test('a fixed cost draws exactly its base, whatever the seed', () => {
  for (const seed of [0, 1, 2, 0xffffffff]) {
    const m = new CostModel(seed);
    assert.equal(m.draw('cpu.fault'), 700);
    assert.equal(m.draw('swap.in'), 80_000);
    assert.equal(m.draw('mlx5.pf.resume'), 79_000);
  }
});

test('per-page growth is added for each page after the first; per-byte and per-entry for every one', () => {
  const m = new CostModel(1);
  const umrPerPage = COSTS['mlx5.umr'].perUnit;
  assert.equal(m.draw('mlx5.umr'), 7_000);
  assert.equal(m.draw('mlx5.umr', 1), 7_000);
  assert.equal(m.draw('mlx5.umr', 0), 7_000, 'no page is charged the base');
  assert.equal(m.draw('mlx5.umr', 2), Math.round(7_000 + umrPerPage));
  assert.equal(m.draw('mlx5.umr', 1024), 18_000, "Figure 3's 1024-page UMR");
  assert.equal(m.draw('mlx5.pf.driver', 1024), 107_000);
  assert.equal(m.draw('mlx5.invalidate', 1024), 61_000 - 18_000);
  assert.equal(m.draw('rxe.fault', 10), 3_000 + 9 * 100);
  // A cost without growth ignores the size.
  assert.equal(m.draw('mlx5.pf.resume', 1024), 79_000);
  assert.equal(m.draw('cpu.fault', 50), 700);
  // wire.byte: 8/56 ns a byte at 56 Gb/s, every byte counted, rounded to whole ns.
  assert.equal(m.draw('wire.byte', 0), 0);
  assert.equal(m.draw('wire.byte', 1), 0);
  assert.equal(m.draw('wire.byte', 7), 1);
  assert.equal(m.draw('wire.byte', 4096), Math.round((4096 * 8) / 56));
  assert.equal(m.draw('wire.byte', 56_000), 8_000);
  // notifier.walk: every entry examined is charged, the first too.
  const perEntry = COSTS['notifier.walk'].perUnit;
  assert.equal(m.draw('notifier.walk', 0), COSTS['notifier.walk'].base);
  assert.equal(
    m.draw('notifier.walk', 10),
    Math.round(COSTS['notifier.walk'].base + 10 * perEntry),
  );
});

test('a drawn cost grows per page on top of its drawn base', () => {
  const a = new CostModel(5);
  const b = new CostModel(5);
  const per = COSTS['mlx5.pf.trigger'].perUnit;
  for (let i = 0; i < 100; i++) {
    const one = a.draw('mlx5.pf.trigger', 1);
    const many = b.draw('mlx5.pf.trigger', 1024);
    assert.ok(Math.abs(many - one - per * 1023) <= 1, `${many} - ${one}`);
  }
});

test('the tally counts every draw and sums the ns, by cost', () => {
  const m = new CostModel(3);
  assert.equal(m.tally.size, 0);
  m.draw('cpu.fault');
  m.draw('cpu.fault');
  m.draw('mlx5.umr', 1024);
  const t = draws(m, 'mlx5.pf.trigger', 25);
  assert.deepEqual(m.tally.get('cpu.fault'), { count: 2, ns: 1_400 });
  assert.deepEqual(m.tally.get('mlx5.umr'), { count: 1, ns: 18_000 });
  assert.deepEqual(m.tally.get('mlx5.pf.trigger'), {
    count: 25,
    ns: t.reduce((s, v) => s + v, 0),
  });
  assert.equal(m.tally.get('swap.in'), undefined, 'a cost never drawn is not in the tally');
  assert.equal(m.tally.size, 3);
  // A model's tally is its own.
  assert.equal(new CostModel(3).tally.size, 0);
});

test('10,000 draws of mlx5.pf.trigger follow the quantiles of the table', () => {
  const q = COSTS['mlx5.pf.trigger'].base;
  const m = new CostModel(1);
  const sorted = draws(m, 'mlx5.pf.trigger', 10_000).sort((x, y) => x - y);
  assert.ok(sorted[0]! >= q.min, `below min: ${sorted[0]}`);
  assert.ok(sorted.at(-1)! <= q.max, `above max: ${sorted.at(-1)}`);
  const close = (key: 'p50' | 'p95' | 'p99', p: number, fraction: number) => {
    const got = empirical(sorted, p);
    assert.ok(
      Math.abs(got - q[key]) <= q[key] * fraction,
      `${key}: empirical ${got} ns, table ${q[key]} ns`,
    );
  };
  close('p50', 0.5, 0.02);
  close('p95', 0.95, 0.02);
  // Above p99 the distribution runs to max (373 µs) within 1% of the mass: a wider band.
  close('p99', 0.99, 0.05);
  // The draws do vary: the spread of the body is there.
  assert.ok(empirical(sorted, 0.05) < q.p50 && empirical(sorted, 0.75) > q.p50);
  const aboveP99 = sorted.filter((v) => v > q.p99).length;
  assert.ok(aboveP99 > 50 && aboveP99 < 200, `${aboveP99} draws above p99`);
});

test('quantileAt is linear between the quantiles, from min at 0 to max at 1', () => {
  const q: CostQuantiles = { min: 0, p50: 100, p95: 200, p99: 300, max: 1300 };
  assert.equal(quantileAt(q, 0), 0);
  assert.equal(quantileAt(q, 0.25), 50);
  assert.equal(quantileAt(q, 0.5), 100);
  assert.equal(quantileAt(q, 0.95), 200);
  assert.equal(quantileAt(q, 0.99), 300);
  assert.ok(Math.abs(quantileAt(q, 0.995) - 800) < 1e-6);
  assert.equal(quantileAt(q, 1), 1300);
});

test('the same seed draws the same sequence', () => {
  const a = new CostModel(42);
  const b = new CostModel(42);
  const mixed = (m: CostModel) => [
    ...draws(m, 'mlx5.pf.trigger', 50),
    m.draw('cpu.fault'),
    ...draws(m, 'mlx5.pf.trigger', 50, 16),
  ];
  assert.deepEqual(mixed(a), mixed(b));
  assert.deepEqual(a.tally, b.tally);
});

test('seeds 1 and 2 draw different sequences, from the first draw on', () => {
  const a = draws(new CostModel(1), 'mlx5.pf.trigger', 100);
  const b = draws(new CostModel(2), 'mlx5.pf.trigger', 100);
  assert.notEqual(a[0], b[0], 'nearby seeds must not draw the same first cost');
  // Not merely shifted or mostly equal.
  const same = a.filter((v, i) => v === b[i]).length;
  assert.ok(same < 5, `${same} of 100 draws equal`);
  // And the first draws of nearby seeds are spread out, not bunched (the seed is mixed).
  const firsts = new Set(
    Array.from({ length: 20 }, (_, s) => new CostModel(s + 1).draw('mlx5.pf.trigger')),
  );
  assert.ok(firsts.size >= 18, `${firsts.size} distinct first draws of 20 seeds`);
});

test('an override replaces the base, keeping the per-page part', () => {
  const m = new CostModel(1, { 'cpu.fault': { base: 1_234 }, 'mlx5.umr': { base: 1_000 } });
  assert.equal(m.draw('cpu.fault'), 1_234);
  assert.equal(m.draw('mlx5.umr'), 1_000);
  assert.equal(m.draw('mlx5.umr', 1024), 1_000 + 11_000);
  assert.equal(m.entries['mlx5.umr'].perUnit, COSTS['mlx5.umr'].perUnit);
  // Zero is a valid duration for costs without a minimum.
  assert.equal(new CostModel(1, { 'cpu.fault': { base: 0 } }).draw('cpu.fault'), 0);
});

test('an override replaces the per-unit part, keeping the base', () => {
  const m = new CostModel(1, { 'mlx5.umr': { perUnit: 10 }, 'wire.byte': { perUnit: 1 } });
  assert.equal(m.draw('mlx5.umr', 1), 7_000);
  assert.equal(m.draw('mlx5.umr', 11), 7_100);
  assert.equal(m.draw('wire.byte', 4096), 4096);
  const both = new CostModel(1, { 'mlx5.pf.driver': { base: 2, perUnit: 3 } });
  assert.equal(both.draw('mlx5.pf.driver', 5), 2 + 4 * 3);
});

test('an override replaces the quantiles, or makes a drawn cost fixed and a fixed one drawn', () => {
  const flat: CostQuantiles = { min: 5_000, p50: 5_000, p95: 5_000, p99: 5_000, max: 5_000 };
  const m = new CostModel(1, { 'mlx5.pf.trigger': { base: flat } });
  assert.deepEqual(new Set(draws(m, 'mlx5.pf.trigger', 100)), new Set([5_000]));
  const fixed = new CostModel(1, { 'mlx5.pf.trigger': { base: 9_000 } });
  assert.equal(fixed.draw('mlx5.pf.trigger'), 9_000);
  assert.equal(
    fixed.draw('mlx5.pf.trigger', 2),
    Math.round(9_000 + COSTS['mlx5.pf.trigger'].perUnit),
  );
  const q: CostQuantiles = { min: 100, p50: 200, p95: 300, p99: 400, max: 500 };
  const drawn = draws(new CostModel(1, { 'cpu.fault': { base: q } }), 'cpu.fault', 1_000);
  assert.ok(drawn.every((v) => v >= 100 && v <= 500));
  assert.ok(new Set(drawn).size > 50, 'a quantile override of a fixed cost varies');
});

test('overrides leave the table and other models alone', () => {
  const before = JSON.stringify(COSTS);
  const m = new CostModel(1, { 'cpu.fault': { base: 1 }, 'mlx5.umr': { perUnit: 0 } });
  assert.equal(m.draw('cpu.fault'), 1);
  assert.equal(JSON.stringify(COSTS), before);
  assert.equal(new CostModel(1).draw('cpu.fault'), 700);
  assert.equal(resolveCosts()['cpu.fault'].base, 700);
  assert.deepEqual(resolveCosts({}), COSTS);
});

test('bad overrides are EINVAL naming the cost', () => {
  const bad = (o: CostOverrides, ...words: string[]) => {
    einval(() => new CostModel(1, o), ...words);
    einval(() => resolveCosts(o), ...words);
  };
  bad({ nope: { base: 1 } } as unknown as CostOverrides, 'unknown cost', '"nope"', 'cpu.fault');
  bad({ 'cpu.fault': { base: -1 } }, 'cpu.fault', '-1');
  bad({ 'cpu.fault': { base: Number.NaN } }, 'cpu.fault', 'NaN');
  bad({ 'cpu.fault': { base: Number.POSITIVE_INFINITY } }, 'cpu.fault', 'Infinity');
  bad({ 'mlx5.umr': { perUnit: -5 } }, 'mlx5.umr', '-5');
  bad({ 'mlx5.umr': { perUnit: Number.NaN } }, 'mlx5.umr', 'NaN');
  bad(
    { 'mlx5.pf.trigger': { base: { min: 5, p50: 4, p95: 6, p99: 7, max: 8 } } },
    'mlx5.pf.trigger',
    'p50',
  );
  bad(
    { 'mlx5.pf.trigger': { base: { min: 1, p50: 2, p95: 3, p99: 9, max: 8 } } },
    'mlx5.pf.trigger',
    'max',
  );
  bad({ 'cpu.fault': { base: { min: -1, p50: 2, p95: 3, p99: 4, max: 5 } } }, 'cpu.fault', 'min');
  bad(
    { 'cpu.fault': { base: { min: 1, p50: Number.NaN, p95: 3, p99: 4, max: 5 } } },
    'cpu.fault',
    'p50',
  );
  bad({ 'cpu.fault': { perUnit: 5 } }, 'cpu.fault', 'no per-page or per-byte part');
  bad({ 'mlx5.pf.resume': { perUnit: 5 } }, 'mlx5.pf.resume');
  bad({ 'hmm.retry': { base: 0 } }, 'hmm.retry', '≥ 1 ns', 'got 0');
  bad({ 'hmm.retry': { base: 0.5 } }, 'hmm.retry', '≥ 1 ns');
  // Its minimum itself is allowed.
  assert.equal(new CostModel(1, { 'hmm.retry': { base: 1 } }).draw('hmm.retry'), 1);
});

test('checkCostName accepts the names of the table only', () => {
  assert.equal(checkCostName('mlx5.umr'), 'mlx5.umr');
  einval(() => checkCostName('mlx5'), 'unknown cost "mlx5"');
  einval(() => checkCostName(''), 'unknown cost ""');
  // Inherited properties of an object are not costs.
  einval(() => checkCostName('toString'), '"toString"');
  einval(() => checkCostName('__proto__'), '"__proto__"');
});
