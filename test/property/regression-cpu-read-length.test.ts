// Regression (fixed in src/mm/cpu-access.ts, found by api-bad-input.test.ts): cpuRead() allocated its
// result before anything else, so a length above what a Uint8Array holds (2^33 bytes, say,
// inside TASK_SIZE) threw a RangeError (Invalid typed array length).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cpuRead,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  mmap,
  PAGE_SIZE,
  PROT_READ,
} from '../../src/index.ts';
import { errnoOf, inWorld } from './regression-harness.ts';

test('cpuRead() of more bytes than one read can return is an EINVAL naming the length', () => {
  const bug = inWorld(function* (mm) {
    const a = yield* mmap(mm, {
      len: PAGE_SIZE,
      prot: PROT_READ,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    for (const len of [2 ** 33, 2 ** 39]) {
      const e = yield* errnoOf(() => cpuRead(mm, a, len));
      assert.equal(e.code, 'EINVAL');
      assert.ok(e.message.includes(String(len)), e.message);
    }
    assert.equal((yield* cpuRead(mm, a, 16)).length, 16);
  });
  assert.equal(bug, null, bug?.message);
});
