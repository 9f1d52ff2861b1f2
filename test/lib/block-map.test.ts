import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockMap } from '../../src/lib/block-map.ts';

test('BlockMap: set, get, has, delete and size across blocks, at page numbers of 2^35', () => {
  const m = new BlockMap<string>();
  const far = 2 ** 35 + 3;
  m.set(0, 'a');
  m.set(511, 'b');
  m.set(512, 'c');
  m.set(far, 'd');
  m.set(511, 'B');
  assert.equal(m.size, 4);
  assert.deepEqual(
    [m.get(0), m.get(511), m.get(512), m.get(far), m.get(1)],
    ['a', 'B', 'c', 'd', undefined],
  );
  assert.equal(m.has(far), true);
  assert.equal(m.delete(far), true);
  assert.equal(m.delete(far), false);
  assert.equal(m.delete(5), false);
  assert.equal(m.has(far), false);
  assert.equal(m.size, 3);
});

test('BlockMap iterates in block creation order, then page order', () => {
  const m = new BlockMap<number>();
  for (const n of [1030, 3, 1025, 0]) m.set(n, n * 10);
  assert.deepEqual([...m.keys()], [1025, 1030, 0, 3]);
  assert.deepEqual([...m.values()], [10250, 10300, 0, 30]);
  assert.deepEqual(
    [...m],
    [
      [1025, 10250],
      [1030, 10300],
      [0, 0],
      [3, 30],
    ],
  );
});
