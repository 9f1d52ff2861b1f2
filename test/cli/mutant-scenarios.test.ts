// The table `odpsim list` prints (which scenarios reach each mutant) is what a fresh probe of
// every scenario finds: regenerate it with scripts/mutant-scenarios.ts when this fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MUTANTS } from '../../src/check/mutants.ts';
import { MUTANT_SCENARIOS } from '../../src/cli/mutant-scenarios.ts';
import { probeScenarios } from '../../src/cli/probe.ts';
import { SCENARIOS } from '../../src/scenarios/index.ts';

test('the mutant-to-scenario table matches a probe of every scenario (defaults, reach settings, small-ranged parameters)', () => {
  const reaches = MUTANTS.flatMap((m) => (m.reach === undefined ? [] : [m.reach]));
  const fresh = probeScenarios(SCENARIOS, reaches);
  for (const m of MUTANTS)
    assert.deepEqual(MUTANT_SCENARIOS[m.name], fresh[m.name] ?? [], `${m.name}: stale table`);
  assert.deepEqual(Object.keys(MUTANT_SCENARIOS).sort(), MUTANTS.map((m) => m.name).sort());
  // Every documented reach is in the table: list never contradicts its own reach commands.
  for (const m of MUTANTS)
    if (m.reach !== undefined)
      assert.ok(
        MUTANT_SCENARIOS[m.name]!.some((s) => s.split(' ')[0] === m.reach!.scenario),
        `${m.name}: its reach scenario ${m.reach.scenario} is not in the table`,
      );
});
