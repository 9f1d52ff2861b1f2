// The interval-mirror scenario: every racing operation is clean with the correct code, and the
// operation number is checked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explore, isErrno } from '../../src/index.ts';
import { resolveParams } from '../../src/scenarios/index.ts';
import { MIRROR_OPS, intervalMirrorScenario as s } from '../../src/scenarios/interval-mirror.ts';

test('every operation raced against the mirror is clean (pct, seed 1, 300 runs each)', () => {
  assert.equal(MIRROR_OPS.length, 10);
  for (let op = 0; op < MIRROR_OPS.length; op++) {
    const params = resolveParams(s, { op });
    const r = explore((k) => s.build(k, params), { strategy: 'pct', seed: 1, runs: 300 });
    assert.equal(r.failure, null, `${MIRROR_OPS[op]}: ${r.failure?.bug.message}`);
    assert.equal(r.runs, 300);
  }
});

test('op outside the operations is EINVAL naming the parameter', () => {
  assert.throws(
    () => resolveParams(s, { op: 10 }),
    (e: unknown) =>
      isErrno(e, 'EINVAL') && /parameter op of scenario interval-mirror/.test(String(e)),
  );
});
