// The kvm-mirror scenario and the scenario registry. Explorer tests state strategy, seed and budget.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explore, Kernel, TimedStrategy } from '../../src/index.ts';
import {
  DEFAULT_SCENARIO,
  findScenario,
  resolveParams,
  SCENARIOS,
} from '../../src/scenarios/index.ts';
import { kvmMirrorScenario } from '../../src/scenarios/kvm-mirror.ts';

const defaults = resolveParams(kvmMirrorScenario);
const build =
  (params = defaults) =>
  (k: Kernel) =>
    kvmMirrorScenario.build(k, params);

test('kvm-mirror runs clean with its defaults under the timed strategy, spending virtual time', () => {
  const k = new Kernel({ strategy: new TimedStrategy() });
  kvmMirrorScenario.build(k, defaults);
  const r = k.run();
  assert.equal(r.bug, null, r.bug?.message);
  assert.ok(r.time > 0);
  assert.ok(r.steps < 2000, `defaults should be small, took ${r.steps} steps`);
});

test('kvm-mirror is clean under pct (seed 1, 300 runs), random (seed 1, 300 runs) and dfs (bound 2, 300 runs)', () => {
  for (const strategy of ['pct', 'random', 'dfs'] as const) {
    const r = explore(build(), { strategy, seed: 1, runs: 300 });
    assert.equal(r.failure, null, `${strategy}: ${r.failure?.bug.message}`);
  }
});

test('kvm-mirror under memory pressure (frames=2, pages=6) keeps the data (pct, seed 2, 100 runs)', () => {
  const params = resolveParams(kvmMirrorScenario, { frames: 2, pages: 6, touches: 20 });
  const r = explore(build(params), { strategy: 'pct', seed: 2, runs: 100 });
  assert.equal(r.failure, null, r.failure?.bug.message);
});

test('kvm-mirror finds kvm.retry-ignores-in-progress (random, seed 1, ≤ 500 runs)', () => {
  const r = explore(build(), {
    strategy: 'random',
    seed: 1,
    runs: 500,
    mutants: ['kvm.retry-ignores-in-progress'],
  });
  assert.equal(r.failure?.rule, 'coherence', r.failure?.bug.message);
  assert.match(r.failure.bug.message, /device kvm still maps/);
});

test('registry: the default name resolves, unknown names and bad parameters are EINVAL naming them', () => {
  assert.equal(findScenario(DEFAULT_SCENARIO).name, DEFAULT_SCENARIO);
  assert.ok(SCENARIOS.some((s) => s.name === 'kvm-mirror'));
  assert.throws(
    () => findScenario('nope'),
    /EINVAL: unknown scenario "nope" \(known: .*kvm-mirror/,
  );
  assert.throws(
    () => resolveParams(kvmMirrorScenario, { nope: 1 }),
    /EINVAL: scenario kvm-mirror has no parameter "nope" \(known: pages/,
  );
  assert.throws(
    () => resolveParams(kvmMirrorScenario, { pages: 0 }),
    /parameter pages .*\[1, 4096\], got 0/,
  );
  assert.throws(() => resolveParams(kvmMirrorScenario, { pages: 1.5 }), /parameter pages/);
  assert.deepEqual(resolveParams(kvmMirrorScenario, { vcpus: 3 }), { ...defaults, vcpus: 3 });
  assert.deepEqual(
    Object.keys(defaults),
    kvmMirrorScenario.params.map((p) => p.name),
  );
});
