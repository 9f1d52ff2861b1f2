// Explorer tests of the mm with a KVM-style mirror (classic notifier, count + sequence).
// Each states strategy, seed and budget.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explore } from '../../src/index.ts';
import { kvmWorld, mutations } from './kvm-worlds.ts';

for (const [name, mutation] of Object.entries(mutations)) {
  test(`KVM-style mirror vs ${name}: clean under pct (seed 1, depth 3, 10,000 runs) and dfs (bound 2)`, () => {
    const world = kvmWorld(mutation);
    const pct = explore(world, { strategy: 'pct', seed: 1, depth: 3, runs: 10_000 });
    assert.equal(pct.failure, null, pct.failure?.bug.message);
    const dfs = explore(world, { strategy: 'dfs', preemptions: 2, runs: 20_000 });
    assert.equal(dfs.failure, null, dfs.failure?.bug.message);
    assert.ok(dfs.runs > 100);
  });
}
