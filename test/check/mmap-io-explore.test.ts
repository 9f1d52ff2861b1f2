// Explorer tests of the mmap-io-unplug scenario: the correct code is clean, and each
// regression case (M1–M3 and a fork copy nobody tracks) is found. Each states strategy, seed
// and budget; the budgets (10,000 runs of random and pct, dfs bound 2) are in the notes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { worldBuilder, worldSpec } from '../../src/cli/world.ts';
import { type ExploreOptions, explore } from '../../src/index.ts';

const world = (set: Record<string, number> = {}) => worldBuilder(worldSpec('mmap-io-unplug', set));

const clean: [string, Record<string, number>, ExploreOptions][] = [
  ['defaults, pct seed 1, 300 runs', {}, { strategy: 'pct', seed: 1, runs: 300 }],
  ['defaults, random seed 1, 300 runs', {}, { strategy: 'random', seed: 1, runs: 300 }],
  ['defaults, dfs bound 2, 300 schedules', {}, { strategy: 'dfs', preemptions: 2, runs: 300 }],
  [
    'procs=3 mremap=0, pct seed 2, 200 runs',
    { procs: 3, mremap: 0 },
    { strategy: 'pct', seed: 2, runs: 200 },
  ],
  ['era=501, random seed 2, 200 runs', { era: 501 }, { strategy: 'random', seed: 2, runs: 200 }],
];

for (const [name, set, options] of clean) {
  test(`mmap-io-unplug is clean with the correct code: ${name}`, () => {
    const r = explore(world(set), options);
    assert.equal(r.failure, null, r.failure?.bug.message);
    assert.equal(r.runs, options.runs);
  });
}

// Each mutant's exploration is recorded with the mutant (src/check/mutants.ts) and run by
// mutant-reach.test.ts.

test('era=420 is M1 itself, and era=613 the disassociation_lock inversion (pct seed 1, ≤ 10 runs)', () => {
  const old = explore(world({ era: 420 }), { strategy: 'pct', seed: 1, runs: 10 });
  assert.equal(old.failure?.bug.rule, 'io-semantics');
  const recent = explore(world({ era: 613 }), { strategy: 'pct', seed: 1, runs: 10 });
  assert.equal(recent.failure?.bug.rule, 'lock-order');
  assert.match(recent.failure!.bug.message, /disassociation_lock/);
});

test('era=505 and 506 keep an exiting process mmap entries past dealloc_ucontext (WARN); 507 puts them (pct seed 1, 20 runs)', () => {
  for (const era of [505, 506]) {
    const r = explore(world({ era }), { strategy: 'pct', seed: 1, runs: 20 });
    assert.equal(r.failure?.rule, 'warn', `era ${era}`);
    assert.match(r.failure!.bug.message, /mmap offsets still in mmap_xa at dealloc_ucontext/);
  }
  const fixed = explore(world({ era: 507 }), { strategy: 'pct', seed: 1, runs: 20 });
  assert.equal(fixed.failure, null, fixed.failure?.bug.message);
});
