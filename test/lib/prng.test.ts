import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prng } from '../../src/index.ts';

test('Prng is deterministic per seed and differs across seeds', () => {
  const a = new Prng(42);
  const b = new Prng(42);
  const c = new Prng(43);
  const sa = Array.from({ length: 8 }, () => a.nextU32());
  const sb = Array.from({ length: 8 }, () => b.nextU32());
  const sc = Array.from({ length: 8 }, () => c.nextU32());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
});

test('Prng.below stays in range and covers it', () => {
  const p = new Prng(7);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const v = p.below(5);
    assert.ok(v >= 0 && v < 5 && Number.isInteger(v));
    seen.add(v);
  }
  assert.equal(seen.size, 5);
});
