// Regression (fixed in src/mm/mmap.ts, found by api-bad-input.test.ts): MAP_POPULATE made mmap() fail after
// the mapping was made when a page could not be faulted in, and a shared anonymous mapping used
// mmap()'s offset as its page offset into a shmem object of its own length (every access past
// EOF). Linux ignores populate errors (__mm_populate(ignore_errors = 1)) and the offset of an
// anonymous mapping (do_mmap(): pgoff = 0 for MAP_SHARED).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cpuReadU32,
  MAP_ANONYMOUS,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  mmap,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
} from '../../src/index.ts';
import { inWorld } from './regression-harness.ts';

test('mmap(MAP_POPULATE) succeeds when pages cannot be populated: PROT_NONE, past the end of the file', () => {
  const bug = inWorld(function* (mm, machine) {
    const a = yield* mmap(mm, {
      len: 2 * PAGE_SIZE,
      prot: PROT_NONE,
      flags: MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE,
    });
    assert.ok(mm.covered(a, a + 2 * PAGE_SIZE));
    const file = machine.createFile('short', { size: PAGE_SIZE });
    const b = yield* mmap(mm, {
      len: 4 * PAGE_SIZE,
      prot: PROT_READ,
      flags: MAP_PRIVATE | MAP_POPULATE,
      file,
    });
    assert.ok(mm.covered(b, b + 4 * PAGE_SIZE));
    assert.deepEqual(mm.addressesIn(b, b + 4 * PAGE_SIZE), [b], 'the page inside the file only');
  });
  assert.equal(bug, null, bug?.message);
});

test('a shared anonymous mapping ignores the offset: with offset 8192 it reads zeros', () => {
  const bug = inWorld(function* (mm) {
    const a = yield* mmap(mm, {
      len: 2 * PAGE_SIZE,
      prot: PROT_READ,
      flags: MAP_SHARED | MAP_ANONYMOUS,
      offset: 2 * PAGE_SIZE,
    });
    assert.equal(yield* cpuReadU32(mm, a + PAGE_SIZE), 0);
  });
  assert.equal(bug, null, bug?.message);
});
