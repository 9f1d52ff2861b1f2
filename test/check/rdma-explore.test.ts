// Explorer tests of the rdma-odp scenario on the mlx5-like HCA, both ODP designs: the correct
// code is clean, and each of the regression cases O1–O4 (2014) and the interval-notifier client
// mistakes (current design) is found. Each states strategy, seed and
// budget; the larger budgets of the issue (10,000 runs, dfs bound 2) are in the session notes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { worldBuilder, worldSpec } from '../../src/cli/world.ts';
import { type ExploreOptions, explore, type Kernel } from '../../src/index.ts';
import { resolveParams } from '../../src/scenarios/index.ts';
import { rdmaOdpScenario } from '../../src/scenarios/rdma-odp.ts';

const world = (set: Record<string, number> = {}) => {
  const params = resolveParams(rdmaOdpScenario, set);
  return (k: Kernel) => rdmaOdpScenario.build(k, params);
};

const clean: [string, Record<string, number>, ExploreOptions][] = [
  ['defaults, pct seed 1, 150 runs', {}, { strategy: 'pct', seed: 1, runs: 150 }],
  ['defaults, random seed 1, 150 runs', {}, { strategy: 'random', seed: 1, runs: 150 }],
  ['defaults, dfs bound 2, 150 schedules', {}, { strategy: 'dfs', preemptions: 2, runs: 150 }],
  [
    'teardown=1 (OOM reaper), pct seed 2, 100 runs',
    { teardown: 1 },
    { strategy: 'pct', seed: 2, runs: 100 },
  ],
  [
    'machines=2, random seed 3, 100 runs',
    { machines: 2 },
    { strategy: 'random', seed: 3, runs: 100 },
  ],
  ['design=2020, pct seed 1, 150 runs', { design: 2020 }, { strategy: 'pct', seed: 1, runs: 150 }],
  ['design=2018, pct seed 1, 150 runs', { design: 2018 }, { strategy: 'pct', seed: 1, runs: 150 }],
  [
    'design=2020, dfs bound 2, 150 schedules',
    { design: 2020 },
    { strategy: 'dfs', preemptions: 2, runs: 150 },
  ],
  [
    'sw=1 (rxe), pct seed 1, 150 runs',
    { design: 2020, sw: 1 },
    { strategy: 'pct', seed: 1, runs: 150 },
  ],
  [
    'sw=1 (rxe), dfs bound 2, 150 schedules',
    { design: 2020, sw: 1 },
    { strategy: 'dfs', preemptions: 2, runs: 150 },
  ],
  [
    'design=2020 teardown=1, random seed 2, 100 runs',
    { design: 2020, teardown: 1 },
    { strategy: 'random', seed: 2, runs: 100 },
  ],
];

for (const [name, set, options] of clean) {
  test(`rdma-odp is clean with the correct code: ${name}`, () => {
    const r = explore(world(set), options);
    assert.equal(r.failure, null, r.failure?.bug.message);
    assert.equal(r.runs, options.runs);
  });
}

// Each mutant's own exploration (scenario, settings, strategy, seed, budget, rule and message)
// is recorded with the mutant (src/check/mutants.ts) and run by mutant-reach.test.ts. O2 on the
// interim design is the one more case.
test('O2 odp.nonblock-start-leak is found on the interim design too (pct, seed 1, 50 runs)', () => {
  const r = explore(world({ design: 2018, teardown: 1 }), {
    strategy: 'pct',
    seed: 1,
    runs: 50,
    mutants: ['odp.nonblock-start-leak'],
  });
  assert.equal(r.failure?.rule, 'lock-order', r.failure?.bug.message ?? 'not found');
  assert.match(r.failure.bug.message, /oom_reaper holding \[[^\]]*umem_rwsem\(read\)/);
});

test('teardown=2 shows the 2014 design leaking the mm_struct of an owner that exits with ODP MRs registered', () => {
  const r = explore(world({ teardown: 2 }), { strategy: 'pct', seed: 1, runs: 1 });
  assert.equal(r.failure?.rule, 'leak', r.failure?.bug.message);
  assert.match(r.failure.bug.message, /still held: 1 mms/);
});

test('the interim design has no deferred activation, so O1 cannot happen there (pct, seed 1, 150 runs)', () => {
  const r = explore(world({ design: 2018, ops: 0, rounds: 0 }), {
    strategy: 'pct',
    seed: 1,
    runs: 150,
    mutants: ['odp2014.activation-race'],
  });
  assert.equal(r.failure, null, r.failure?.bug.message);
});

test('teardown=2 (exit with MRs registered) leaks the mm under the 2014 design only, as its help says (timed run)', () => {
  for (const [design, leaks] of [
    [2014, true],
    [2018, false],
    [2020, false],
  ] as const) {
    const r = explore(worldBuilder(worldSpec('rdma-odp', { design, teardown: 2 })), {
      strategy: 'timed',
      runs: 1,
    });
    assert.equal(r.failure?.rule === 'leak', leaks, `design ${design}: ${r.failure?.bug.message}`);
  }
});
