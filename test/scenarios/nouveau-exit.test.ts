// The nouveau-exit scenario (docs/findings/nouveau-exit-release.md): with no ->release, the
// GPU keeps its entries of the pages exit_mmap() frees; with the proposed ->release it does not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explore, Kernel, TimedStrategy } from '../../src/index.ts';
import { resolveParams } from '../../src/scenarios/index.ts';
import { nouveauExitScenario as s } from '../../src/scenarios/nouveau-exit.ts';

const world = (set: Record<string, number>) => {
  const params = resolveParams(s, set);
  return (k: Kernel) => s.build(k, params);
};

test('in do_exit order the GPU still maps a page after exit_mmap cleared its CPU entry', () => {
  const k = new Kernel({ strategy: new TimedStrategy() });
  world({})(k);
  const r = k.run();
  assert.equal(r.bug?.rule, 'coherence', r.bug?.message);
  assert.match(
    r.bug!.message,
    /in task process .*device nouveau still maps mm\d+ 0x[0-9a-f]+ \(pfn \d+\) after the CPU entry was cleared/,
  );
});

test('found on the first schedule of every strategy (pct, random, dfs; seed 1, 10 runs)', () => {
  for (const strategy of ['pct', 'random', 'dfs'] as const) {
    const r = explore(world({}), { strategy, seed: 1, runs: 10 });
    assert.equal(r.failure?.rule, 'coherence', `${strategy}: ${r.failure?.bug.message}`);
  }
});

test('with a ->release (fix=1) nothing is found (pct and random, seed 1, 2,000 runs; dfs bound 2 exhausted)', () => {
  for (const strategy of ['pct', 'random'] as const) {
    const r = explore(world({ fix: 1 }), { strategy, seed: 1, runs: 2000 });
    assert.equal(r.failure, null, `${strategy}: ${r.failure?.bug.message}`);
  }
  const dfs = explore(world({ fix: 1 }), { strategy: 'dfs', preemptions: 2, runs: 5000 });
  assert.equal(dfs.failure, null, dfs.failure?.bug.message);
  assert.equal(dfs.dfs?.exhausted, true);
});
