// The interval notifier under exploration: an interval mirror (readBegin → hmm_range_fault →
// lock → readRetry → commit) racing every mm operation, clean under pct and dfs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explore } from '../../src/index.ts';
import { intervalWorld, mutations } from './interval-worlds.ts';

for (const [name, mutation] of Object.entries(mutations)) {
  test(`interval mirror vs ${name}: clean under pct (seed 1, depth 3, 10,000 runs) and dfs (bound 2, ≤ 5,000 runs)`, () => {
    const world = intervalWorld(mutation);
    const pct = explore(world, { strategy: 'pct', seed: 1, depth: 3, runs: 10_000 });
    assert.equal(pct.failure, null, pct.failure?.bug.message);
    const dfs = explore(world, { strategy: 'dfs', preemptions: 2, runs: 5_000 });
    assert.equal(dfs.failure, null, dfs.failure?.bug.message);
  });
}
