// Regression (fixed in src/mm/mmap.ts, mprotect.ts, mremap.ts; found by api-bad-input.test.ts): prot and
// flags are checked with 32-bit operators, so bits above bit 31 are dropped (prot 2^32 + 3
// mapped read-write, prot 2^64 mapped PROT_NONE, flags 2^32 | MAP_PRIVATE | MAP_ANONYMOUS
// mapped), and a prot or flags that is not a number crashed the message of its EINVAL
// (hex(undefined), a bigint mixed with a number).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Co,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MREMAP_MAYMOVE,
  mmap,
  mprotect,
  mremap,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/index.ts';
import { errnoOf, inWorld } from './regression-harness.ts';

const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const RW = PROT_READ | PROT_WRITE;

test('a prot or flags that is not a number is an EINVAL naming it, not a TypeError', () => {
  const bug = inWorld(function* (mm) {
    const a = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: ANON });
    const bad: [string, () => Co<unknown>][] = [
      ['mmap', () => mmap(mm, { len: PAGE_SIZE, prot: undefined as never, flags: ANON })],
      ['mmap', () => mmap(mm, { len: PAGE_SIZE, prot: RW, flags: 4096n as never })],
      ['mmap', () => mmap(mm, { len: PAGE_SIZE, prot: 3n as never, flags: ANON })],
      ['mprotect', () => mprotect(mm, a, PAGE_SIZE, undefined as never)],
      ['mprotect', () => mprotect(mm, a, PAGE_SIZE, 1n as never)],
    ];
    for (const [call, run] of bad) {
      const e = yield* errnoOf(run);
      assert.equal(e.code, 'EINVAL');
      assert.match(e.message, new RegExp(`^EINVAL: ${call}: `));
    }
    assert.equal(mm.vmas.length, 1);
  });
  assert.equal(bug, null, bug?.message);
});

test('prot and flags bits above bit 31, or below zero, are unknown bits: EINVAL, nothing changed', () => {
  const bug = inWorld(function* (mm) {
    const a = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_READ, flags: ANON });
    for (const prot of [2 ** 32 + RW, 2 ** 53, 2 ** 64, -(2 ** 32) + RW]) {
      assert.equal(
        (yield* errnoOf(() => mmap(mm, { len: PAGE_SIZE, prot, flags: ANON }))).code,
        'EINVAL',
      );
      assert.equal((yield* errnoOf(() => mprotect(mm, a, PAGE_SIZE, prot))).code, 'EINVAL');
    }
    for (const flags of [2 ** 32 + ANON, 2 ** 40 + ANON, -(2 ** 32) + ANON]) {
      assert.equal(
        (yield* errnoOf(() => mmap(mm, { len: PAGE_SIZE, prot: RW, flags }))).code,
        'EINVAL',
      );
    }
    const e = yield* errnoOf(() =>
      mremap(mm, a, PAGE_SIZE, 2 * PAGE_SIZE, 2 ** 32 + MREMAP_MAYMOVE),
    );
    assert.equal(e.code, 'EINVAL');
    assert.deepEqual(
      mm.vmas.map((v) => [v.start, v.end, v.flags & 0xf]),
      [[a, a + PAGE_SIZE, PROT_READ]],
      'the one read-only mapping, as it was',
    );
  });
  assert.equal(bug, null, bug?.message);
});
