// Regression (fixed in src/mm/mmap.ts unmappedArea(), src/mm/mremap.ts; found by api-bad-input.test.ts):
// when a growing mremap() finds no room to move to, its ENOMEM said "mmap: no free range".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MREMAP_MAYMOVE,
  mmap,
  mremap,
  PAGE_SIZE,
  PROT_READ,
  TASK_SIZE,
} from '../../src/index.ts';
import { errnoOf, inWorld } from './regression-harness.ts';

test('mremap() that finds no room to grow into is an ENOMEM that names mremap', () => {
  const bug = inWorld(function* (mm) {
    const a = yield* mmap(mm, {
      len: PAGE_SIZE,
      prot: PROT_READ,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    yield* mmap(mm, {
      addr: a + PAGE_SIZE,
      len: PAGE_SIZE,
      prot: PROT_READ,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    for (const len of [TASK_SIZE - PAGE_SIZE, 2 ** 50]) {
      const e = yield* errnoOf(() => mremap(mm, a, PAGE_SIZE, len, MREMAP_MAYMOVE));
      assert.equal(e.code, 'ENOMEM');
      assert.match(e.message, /^ENOMEM: mremap: /);
    }
  });
  assert.equal(bug, null, bug?.message);
});
