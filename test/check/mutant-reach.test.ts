// Every mutant names the rule its bug breaks; every one a built-in scenario reaches is found
// there, within the budget `odpsim list` prints, and reported under that rule (not under a
// rule some clean-up path broke afterwards). Each exploration is the one `odpsim explore` runs:
// the step budget sized by the probe run, a run at the limit passed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MUTANTS, reachCommand } from '../../src/check/mutants.ts';
import { PROBE_MAX_STEPS, probeWorld, stepBudget } from '../../src/cli/probe.ts';
import { explore, type Kernel } from '../../src/index.ts';
import { findScenario, resolveParams } from '../../src/scenarios/index.ts';

for (const m of MUTANTS) {
  const r = m.reach;
  if (r === undefined) continue;
  const reported = r.reports === undefined ? '' : ` (reported as ${r.reports})`;
  test(`mutant ${m.name} breaks ${m.rule}${reported}: ${reachCommand(m.name, r)}`, () => {
    const s = findScenario(r.scenario);
    const params = resolveParams(s, r.set);
    const build = (k: Kernel) => s.build(k, params);
    const probe = probeWorld(build, [m.name], r.seed, PROBE_MAX_STEPS);
    assert.ok(
      probe.sites.has(m.name),
      'the probe run does not reach the mutant: explore refuses it',
    );
    const found = explore(build, {
      strategy: r.strategy,
      seed: r.seed,
      runs: r.runs,
      mutants: [m.name],
      maxSteps: stepBudget(probe),
      onStepLimit: 'pass',
    });
    assert.ok(found.failure !== null, 'not found');
    assert.equal(found.failure.rule, r.reports ?? m.rule, found.failure.bug.message);
    if (r.message !== undefined)
      assert.ok(found.failure.bug.message.includes(r.message), found.failure.bug.message);
  });
}

test('the one mutant no built-in scenario reaches is O5, which verbs cannot reach', () => {
  const testOnly = MUTANTS.filter((m) => m.reach === undefined).map((m) => m.name);
  // The snapshot MTT WRITE of a read-only MR is cut to the MR's effective rights first; the
  // acceptance world (test/acceptance/rxe-odp.test.ts) drives rxe's fault path directly.
  assert.deepEqual(testOnly, ['rxe.recheck-keeps-lock']);
  for (const m of MUTANTS) assert.ok(m.rule.length > 0, m.name);
});
