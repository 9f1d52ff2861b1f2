// Explorer tests of the SVA client (IOTLB flushed by the secondary-TLB hook, page requests
// resolved by handle_mm_fault) and the CPU TLBs against every mm operation. Each states
// strategy, seed and budget.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explore } from '../../src/index.ts';
import { svaMutations, svaWorld } from './sva-worlds.ts';

for (const [name, mutation] of Object.entries(svaMutations)) {
  test(`SVA device vs ${name}: clean under pct (seed 1, depth 3, 10,000 runs) and dfs (bound 2)`, () => {
    const world = svaWorld(mutation);
    const pct = explore(world, { strategy: 'pct', seed: 1, depth: 3, runs: 10_000 });
    assert.equal(pct.failure, null, pct.failure?.bug.message);
    const dfs = explore(world, { strategy: 'dfs', preemptions: 2, runs: 20_000 });
    assert.equal(dfs.failure, null, dfs.failure?.bug.message);
    assert.ok(dfs.runs > 100);
  });
}

test('mutant sva.flush-at-range-start is found racing reclaim and munmap (random, seed 1, ≤ 2,000 runs)', () => {
  for (const m of ['reclaim', 'munmap']) {
    const r = explore(svaWorld(svaMutations[m]!), {
      strategy: 'random',
      seed: 1,
      runs: 2000,
      mutants: ['sva.flush-at-range-start'],
    });
    assert.equal(r.failure?.rule, 'stale-tlb', `${m}: ${r.failure?.bug.message}`);
    assert.match(r.failure.bug.message, /the IOTLB of sva0 still caches/);
  }
});
