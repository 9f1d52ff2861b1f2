import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  explore,
  Kernel as K,
  type Kernel,
  TimedStrategy,
  TraceRecorder,
} from '../../src/index.ts';
import { findScenario, resolveParams } from '../../src/scenarios/index.ts';

const world = (set: Record<string, number>) => {
  const s = findScenario('thp-race');
  const params = resolveParams(s, set);
  return (k: Kernel) => s.build(k, params);
};

test('thp-race is clean: pct seed 1 and random seed 2, 40 runs each, as a THP and as the huge zero page', () => {
  for (const [set, strategy, seed] of [
    [{}, 'pct', 1],
    [{ zero: 1 }, 'random', 2],
  ] as const) {
    const r = explore(world(set), { strategy, seed, runs: 40, maxSteps: 200_000 });
    assert.equal(r.failure, null, r.failure?.bug.message);
    assert.equal(r.runs, 40);
  }
});

test('thp-race maps the PMD huge, splits it, migrates it and forks (TimedStrategy, one run)', () => {
  const k = new K({ strategy: new TimedStrategy(), maxSteps: 1_000_000 });
  const rec = new TraceRecorder(k.trace);
  world({})(k);
  const r = k.run();
  assert.equal(r.ok, true, r.bug?.message);
  const paths = new Set(rec.events.filter((e) => e.type === 'mm-path').map((e) => e.fn));
  for (const fn of [
    'do_huge_pmd_anonymous_page',
    '__split_huge_pmd',
    'migrate_vma_setup',
    'dup_mmap',
  ])
    assert.ok(paths.has(fn), fn);
});

test('with mm.thp-split-no-notify thp-race (zero=1) is found by pct seed 1 within 10 runs, under coherence', () => {
  const r = explore(world({ zero: 1 }), {
    strategy: 'pct',
    seed: 1,
    runs: 10,
    maxSteps: 200_000,
    mutants: ['mm.thp-split-no-notify'],
  });
  assert.ok(r.failure !== null, 'not found');
  assert.equal(r.failure.rule, 'coherence');
});
