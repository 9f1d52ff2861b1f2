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
  assert.match(t, /^odp2\.pct\.z\.10\.0_3-1-2_2\.[0-9a-z]{7}$/);
});

/** `body` with its checksum (FNV-1a, base 36), to reach the field checks behind it. */
function signed(body: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < body.length; i++) h = Math.imul(h ^ body.charCodeAt(i), 0x01000193) >>> 0;
  return `${body}.${h.toString(36).padStart(7, '0')}`;
}

test('an edited token is refused by its checksum, whichever field was changed', () => {
  const t = encodeToken({
    strategy: 'pct',
    seed: 7,
    maxSteps: 1000,
    decisions: [0, 1, 0, 2, 1],
    mutants: ['mm.free-before-start'],
    world: '{"scenario":"default","params":{}}',
  });
  assert.equal(decodeToken(t).seed, 7);
  const parts = t.split('.');
  const edits = [
    parts.with(1, 'random'),
    parts.with(2, '8'),
    parts.with(4, parts[4]!.replace('1', '2')),
    parts.slice(0, -1).concat(parts.at(-1)!.replace(/.$/, (c) => (c === '0' ? '1' : '0'))),
  ];
  for (const e of edits)
    assert.throws(
      () => decodeToken(e.join('.')),
      /EINVAL: the replay token was altered or truncated/,
      e.join('.'),
    );
  assert.throws(() => decodeToken(t.slice(0, -3)), /EINVAL/);
  assert.throws(() => decodeToken('odp1.pct.1.1.0'), /made by odpsim 0\.1/);
});

test('malformed tokens are EINVAL naming the bad part', () => {
  const bad: [string, RegExp][] = [
    ['', /not an odpsim replay token/],
    ['odp3.pct.1.1.0.x', /not an odpsim replay token/],
    [signed('odp2.fuzz.1.1.0'), /unknown strategy "fuzz"/],
    [signed('odp2.pct.-1.1.0'), /seed "-1" is not base-36/],
    [signed('odp2.pct.1.1.0_'), /decision count "" is not base-36/],
    [signed('odp2.pct.1.1.0.%%%'), /context is not valid/],
    [signed('odp2.pct.1.1.0.e30'), /context is not valid/],
  ];
  for (const [token, why] of bad) {
    assert.throws(
      () => decodeToken(token),
      (e: unknown) => isErrno(e, 'EINVAL') && why.test((e as Error).message),
      token,
    );
  }
});
