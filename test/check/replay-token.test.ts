import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeToken, encodeToken, isErrno } from '../../src/index.ts';

test('tokens round-trip any record and stay shell-safe', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('random', 'pct', 'dfs', 'replay', 'timed' as const),
      fc.nat({ max: 0xffffffff }),
      fc.integer({ min: 1, max: 1e9 }),
      fc.array(fc.nat({ max: 40 }), { maxLength: 200 }),
      fc.array(fc.string({ minLength: 1 }), { maxLength: 3 }),
      fc.string(),
      (strategy, seed, maxSteps, decisions, mutants, world) => {
        const token = encodeToken({ strategy, seed, maxSteps, decisions, mutants, world });
        assert.match(token, /^[A-Za-z0-9._-]+$/);
        assert.deepEqual(decodeToken(token), {
          strategy,
          seed,
          maxSteps,
          decisions,
          mutants,
          world,
        });
      },
    ),
    { numRuns: 300 },
  );
});

test('runs of one task are run-length encoded', () => {
  const t = encodeToken({
    strategy: 'pct',
    seed: 35,
    maxSteps: 36,
    decisions: [0, 0, 0, 1, 2, 2],
    mutants: [],
    world: '',
  });
  assert.equal(t, 'odp1.pct.z.10.0_3-1-2_2');
});

test('malformed tokens are EINVAL naming the bad part', () => {
  const bad: [string, RegExp][] = [
    ['', /not an odpsim replay token/],
    ['odp2.pct.1.1.0', /not an odpsim replay token/],
    ['odp1.fuzz.1.1.0', /unknown strategy "fuzz"/],
    ['odp1.pct.-1.1.0', /seed "-1" is not base-36/],
    ['odp1.pct.1.1.0_', /decision count "" is not base-36/],
    ['odp1.pct.1.1.0.%%%', /context is not valid/],
    ['odp1.pct.1.1.0.e30', /context is not valid/],
  ];
  for (const [token, why] of bad) {
    assert.throws(
      () => decodeToken(token),
      (e: unknown) => isErrno(e, 'EINVAL') && why.test((e as Error).message),
      token,
    );
  }
});
