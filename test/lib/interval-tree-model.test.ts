import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isErrno } from '../../src/lib/errors.ts';
import { IntervalTree, type IntervalTreeNode } from '../../src/lib/interval-tree.ts';

// Model test: random insert / remove / re-insert / query sequences against a brute-force list,
// checking the red-black rules and every subtree max after each operation.

type Op =
  | { kind: 'insert'; start: number; len: number }
  | { kind: 'remove'; pick: number }
  | { kind: 'removeStale'; pick: number }
  | { kind: 'reinsert'; pick: number }
  | { kind: 'query'; start: number; len: number };

interface Entry {
  node: IntervalTreeNode<number>;
  seq: number;
}

// A small coordinate domain makes overlaps, shared starts and identical intervals common; a
// few operations use the top of the safe-integer range.
const HIGH = Number.MAX_SAFE_INTEGER - 64;
const coord = fc.oneof(
  { weight: 9, arbitrary: fc.integer({ min: 0, max: 60 }) },
  { weight: 1, arbitrary: fc.integer({ min: HIGH, max: HIGH + 40 }) },
);
const len = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 8 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 63 }) },
);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('insert'), start: coord, len }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove'), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('removeStale'), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reinsert'), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('query'), start: coord, len }) },
) as fc.Arbitrary<Op>;

function byStartThenSeq(a: Entry, b: Entry): number {
  return a.node.start - b.node.start || a.seq - b.seq;
}

function run(ops: Op[]): void {
  const tree = new IntervalTree<number>();
  let live: Entry[] = [];
  const removed: IntervalTreeNode<number>[] = [];
  let seq = 0;
  for (const o of ops) {
    switch (o.kind) {
      case 'insert': {
        const last = Math.min(o.start + o.len, Number.MAX_SAFE_INTEGER);
        const node = tree.insert(o.start, last, seq);
        live.push({ node, seq: seq++ });
        break;
      }
      case 'remove': {
        if (live.length === 0) break;
        const i = o.pick % live.length;
        const e = live[i]!;
        tree.remove(e.node);
        live.splice(i, 1);
        removed.push(e.node);
        assert.equal(e.node.inTree, false);
        break;
      }
      case 'removeStale': {
        if (removed.length === 0) break;
        const n = removed[o.pick % removed.length]!;
        assert.throws(
          () => tree.remove(n),
          (e: unknown) => isErrno(e, 'EINVAL'),
        );
        break;
      }
      case 'reinsert': {
        if (removed.length === 0) break;
        const i = o.pick % removed.length;
        const n = removed[i]!;
        removed.splice(i, 1);
        tree.insertNode(n);
        live.push({ node: n, seq: seq++ });
        break;
      }
      case 'query': {
        const last = Math.min(o.start + o.len, Number.MAX_SAFE_INTEGER);
        const expect = live
          .filter((e) => e.node.start <= last && o.start <= e.node.last)
          .sort(byStartThenSeq)
          .map((e) => e.node);
        const got: IntervalTreeNode<number>[] = [];
        for (let n = tree.iterFirst(o.start, last); n !== null; n = tree.iterNext(n, o.start, last))
          got.push(n);
        assert.equal(got.length, expect.length);
        for (let k = 0; k < got.length; k++) assert.equal(got[k], expect[k]);
        break;
      }
    }
    tree.checkInvariants();
    assert.equal(tree.size, live.length);
  }
  // Whole-tree order and identity against the model, then drain.
  live = live.sort(byStartThenSeq);
  assert.deepEqual(
    [...tree],
    live.map((e) => e.node),
  );
  for (const e of live) {
    tree.remove(e.node);
    tree.checkInvariants();
  }
  assert.equal(tree.size, 0);
}

test('model: 1,000 random runs of 200+ operations match a brute-force list', () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 200, maxLength: 240 }), (ops) => run(ops)),
    { numRuns: 1000 },
  );
});
