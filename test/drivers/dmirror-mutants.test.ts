// The dmirror mutants, each found by exploring the dmirror-race scenario within 10,000 pct
// runs (seed 1), and the correct driver clean under the same budget.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explore, type Kernel } from '../../src/index.ts';
import { dmirrorRaceScenario } from '../../src/scenarios/dmirror-race.ts';

const world =
  (oom: number, migrate = 0) =>
  (k: Kernel) =>
    dmirrorRaceScenario.build(k, { pages: 4, frames: 8, oom, migrate });
const PCT = { strategy: 'pct', seed: 1, depth: 3, runs: 10_000 } as const;

for (const oom of [0, 1]) {
  test(`dmirror-race (oom=${oom}) is clean with the correct driver (pct, seed 1, 10,000 runs)`, () => {
    const r = explore(world(oom), PCT);
    assert.equal(r.failure, null, r.failure?.bug.message);
    assert.equal(r.runs, 10_000);
  });
}

test('dmirror-race with device migration (migrate=1) is clean with the correct mm and driver (pct, seed 1, 10,000 runs)', () => {
  const r = explore(world(0, 1), PCT);
  assert.equal(r.failure, null, r.failure?.bug.message);
  assert.equal(r.runs, 10_000);
});

const cases: [string, number, string, RegExp][] = [
  ['dmirror.no-read-retry', 0, 'coherence', /commits a translation|commits mm1/],
  ['dmirror.set-seq-outside-lock', 0, 'coherence', /still maps/],
  ['dmirror.zap-after-unlock', 0, 'coherence', /still maps/],
  ['dmirror.nonblock-mutex', 1, 'sleep-in-atomic', /inside a non-blocking section/],
];

for (const [mutant, oom, rule, message] of cases) {
  test(`mutant ${mutant} is found (pct, seed 1, ≤ 10,000 runs)`, () => {
    const r = explore(world(oom), { ...PCT, mutants: [mutant] });
    assert.equal(r.failure?.rule, rule, r.failure?.bug.message);
    assert.match(r.failure.bug.message, message);
  });
}
