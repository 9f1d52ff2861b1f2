import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isErrno } from '../../src/lib/errors.ts';
import { IntervalTree, IntervalTreeNode } from '../../src/lib/interval-tree.ts';

type Tree = IntervalTree<string>;
type TNode = IntervalTreeNode<string>;

/** All overlaps of [s, l] through iterFirst/iterNext, checking the sequence ends with null. */
function query(t: Tree, s: number, l: number): TNode[] {
  const out: TNode[] = [];
  for (let n = t.iterFirst(s, l); n !== null; n = t.iterNext(n, s, l)) out.push(n);
  return out;
}

function values(nodes: Iterable<TNode>): string[] {
  return Array.from(nodes, (n) => n.value);
}

function einval(pattern: RegExp) {
  return (e: unknown) => isErrno(e, 'EINVAL') && pattern.test((e as Error).message);
}

test('an empty tree has size 0, iterates nothing and answers every query with null', () => {
  const t: Tree = new IntervalTree();
  assert.equal(t.size, 0);
  assert.deepEqual([...t], []);
  assert.equal(t.first(), null);
  assert.equal(t.iterFirst(0, Number.MAX_SAFE_INTEGER), null);
  assert.equal(
    t.forEachOverlap(0, 10, () => assert.fail('called on an empty tree')),
    0,
  );
  t.checkInvariants();
});

test('insert returns a handle exposing start, last, value and membership', () => {
  const t: Tree = new IntervalTree();
  const n = t.insert(5, 9, 'a');
  assert.equal(n.start, 5);
  assert.equal(n.last, 9);
  assert.equal(n.value, 'a');
  assert.equal(n.inTree, true);
  assert.equal(t.size, 1);
  t.remove(n);
  assert.equal(n.inTree, false);
  assert.equal(n.start, 5, 'a removed node keeps its interval');
  assert.equal(t.size, 0);
  t.checkInvariants();
});

test('closed intervals: touching endpoints overlap, one past does not', () => {
  const t: Tree = new IntervalTree();
  t.insert(10, 20, 'x');
  assert.deepEqual(values(query(t, 20, 30)), ['x']);
  assert.deepEqual(values(query(t, 0, 10)), ['x']);
  assert.deepEqual(values(query(t, 21, 30)), []);
  assert.deepEqual(values(query(t, 0, 9)), []);
  assert.deepEqual(values(query(t, 15, 15)), ['x']);
  assert.deepEqual(values(query(t, 0, 100)), ['x']);
});

test('point intervals are found by point and range queries', () => {
  const t: Tree = new IntervalTree();
  for (let i = 0; i < 10; i++) t.insert(i * 2, i * 2, `p${i * 2}`);
  assert.deepEqual(values(query(t, 4, 4)), ['p4']);
  assert.deepEqual(values(query(t, 5, 5)), []);
  assert.deepEqual(values(query(t, 3, 8)), ['p4', 'p6', 'p8']);
  t.checkInvariants();
});

test('duplicates and identical intervals coexist, in insertion order, and remove one at a time', () => {
  const t: Tree = new IntervalTree();
  const a = t.insert(0, 4095, 'a');
  const b = t.insert(0, 4095, 'b');
  const c = t.insert(0, 4095, 'c');
  t.insert(0, 10, 'd');
  assert.equal(t.size, 4);
  assert.deepEqual(values(query(t, 100, 200)), ['a', 'b', 'c']);
  assert.deepEqual(values(t), ['a', 'b', 'c', 'd']);
  t.remove(b);
  assert.deepEqual(values(query(t, 0, 0)), ['a', 'c', 'd']);
  t.remove(a);
  t.remove(c);
  assert.deepEqual(values(t), ['d']);
  t.checkInvariants();
});

test('results come in start order and a long interval is found from far away', () => {
  const t: Tree = new IntervalTree();
  t.insert(50, 60, 'mid');
  t.insert(0, 1000, 'long');
  t.insert(900, 910, 'late');
  t.insert(20, 30, 'early');
  assert.deepEqual(values(query(t, 905, 2000)), ['long', 'late']);
  assert.deepEqual(values(query(t, 0, 2000)), ['long', 'early', 'mid', 'late']);
  assert.deepEqual(values(query(t, 1001, 2000)), []);
});

test('removing the root repeatedly keeps the tree valid', () => {
  const t: Tree = new IntervalTree();
  for (let i = 0; i < 64; i++) t.insert(i, i + 3, String(i));
  const left = new Set(values(t));
  while (t.size > 0) {
    const root = t.rootNode!;
    t.remove(root);
    left.delete(root.value);
    t.checkInvariants();
    assert.deepEqual(new Set(values(t)), left);
  }
  assert.equal(t.rootNode, null);
});

test('draining the tree in insertion order, in reverse and by first() leaves it empty', () => {
  for (const order of ['forward', 'reverse', 'first'] as const) {
    const t: Tree = new IntervalTree();
    const nodes = Array.from({ length: 100 }, (_, i) => t.insert((i * 37) % 101, 200, String(i)));
    if (order === 'reverse') nodes.reverse();
    for (let i = 0; i < 100; i++) {
      t.remove(order === 'first' ? t.first()! : nodes[i]!);
      t.checkInvariants();
    }
    assert.equal(t.size, 0);
    assert.equal(t.first(), null);
    assert.equal(t.iterFirst(0, 1000), null);
    for (const n of nodes) assert.equal(n.inTree, false);
    // A drained tree is reusable.
    t.insert(1, 2, 'again');
    assert.deepEqual(values(query(t, 2, 3)), ['again']);
  }
});

test('removing a node twice, or a node of another tree, throws EINVAL and changes nothing', () => {
  const t: Tree = new IntervalTree();
  const u: Tree = new IntervalTree();
  const n = t.insert(1, 2, 'n');
  const m = u.insert(1, 2, 'm');
  t.insert(3, 4, 'o');
  assert.throws(() => t.remove(m), einval(/belongs to another tree/));
  t.remove(n);
  assert.throws(() => t.remove(n), einval(/not in any tree \(already removed\?\)/));
  assert.throws(() => t.remove(null as unknown as TNode), einval(/must be an IntervalTreeNode/));
  assert.throws(() => t.iterNext(m, 0, 10), einval(/another tree/));
  assert.throws(() => t.next(n), einval(/not in any tree/));
  assert.equal(t.size, 1);
  assert.equal(u.size, 1);
  assert.equal(m.inTree, true);
  t.checkInvariants();
  u.checkInvariants();
});

test('iterNext continues from any node, interleaved with other iterations and after removals', () => {
  const t: Tree = new IntervalTree();
  const nodes = Array.from({ length: 40 }, (_, i) => t.insert(i * 10, i * 10 + 15, `n${i}`));
  // Two iterations advanced in turn: each iterNext continues from the node it is given.
  const a: TNode[] = [];
  const b: TNode[] = [];
  let x = t.iterFirst(0, 95);
  let y = t.iterFirst(200, 260);
  while (x !== null || y !== null) {
    if (x !== null) {
      a.push(x);
      x = t.iterNext(x, 0, 95);
    }
    if (y !== null) {
      b.push(y);
      y = t.iterNext(y, 200, 260);
    }
  }
  assert.deepEqual(a, query(t, 0, 95));
  assert.deepEqual(values(b), ['n19', 'n20', 'n21', 'n22', 'n23', 'n24', 'n25', 'n26']);
  // Restarting from an earlier node than the last one returned.
  assert.deepEqual(t.iterNext(nodes[2]!, 0, 95), nodes[3]);
  // The node last returned, once removed, cannot continue an iteration.
  const last = t.iterFirst(100, 100)!;
  assert.equal(last, nodes[9]);
  t.remove(last);
  assert.throws(() => t.iterNext(last, 100, 100), einval(/not in any tree/));
  t.insertNode(last);
  assert.equal(t.iterNext(last, 100, 100), nodes[10]);
  const u: Tree = new IntervalTree();
  const moved = t.iterFirst(390, 390)!;
  t.remove(moved);
  u.insertNode(moved);
  assert.throws(() => t.iterNext(moved, 390, 390), einval(/another tree/));
  assert.equal(u.iterNext(moved, 390, 390), null);
  t.clear();
  assert.throws(() => t.iterNext(nodes[0]!, 0, 10), einval(/not in any tree/));
});

test('insertNode re-links a removed node and refuses one already in a tree', () => {
  const t: Tree = new IntervalTree();
  const u: Tree = new IntervalTree();
  const n = t.insert(10, 20, 'n');
  assert.throws(() => t.insertNode(n), einval(/already in this tree/));
  assert.throws(() => u.insertNode(n), einval(/already in another tree/));
  t.remove(n);
  u.insertNode(n);
  assert.equal(n.inTree, true);
  assert.deepEqual(values(query(u, 15, 15)), ['n']);
  const fresh = new IntervalTreeNode(1, 1, 'fresh');
  assert.equal(fresh.inTree, false);
  assert.equal(t.insertNode(fresh), fresh);
  assert.deepEqual(values(t), ['fresh']);
  assert.throws(() => t.insertNode({} as TNode), einval(/must be an IntervalTreeNode/));
});

test('bad intervals throw EINVAL naming the argument and never change the tree', () => {
  const t: Tree = new IntervalTree();
  t.insert(5, 6, 'keep');
  const big = Number.MAX_SAFE_INTEGER;
  const cases: [unknown, unknown, RegExp][] = [
    [-1, 5, /start must be a non-negative safe integer, got -1/],
    [1.5, 5, /start must be .* got 1\.5/],
    [Number.NaN, 5, /start must be .* got NaN/],
    ['1', 5, /start must be .* got "1"/],
    [big + 1, big + 2, /start must be .* got 9007199254740992/],
    [0, big + 1, /last must be .* got 9007199254740992/],
    [0, -3, /last must be .* got -3/],
    [0, Number.POSITIVE_INFINITY, /last must be .* got Infinity/],
    [0, undefined, /last must be .* got undefined/],
    [7, 6, /start \(7\) must not exceed last \(6\)/],
  ];
  for (const [s, l, msg] of cases) {
    const S = s as number;
    const L = l as number;
    assert.throws(() => t.insert(S, L, 'bad'), einval(msg));
    assert.throws(() => t.iterFirst(S, L), einval(msg));
    assert.throws(() => t.forEachOverlap(S, L, () => true), einval(msg));
    assert.throws(() => new IntervalTreeNode(S, L, 'bad'), einval(msg));
    const first = t.iterFirst(0, 10)!;
    assert.throws(() => t.iterNext(first, S, L), einval(msg));
  }
  assert.equal(t.size, 1);
  assert.deepEqual(values(t), ['keep']);
  t.checkInvariants();
});

test('the full safe-integer range works, including MAX_SAFE_INTEGER endpoints', () => {
  const t: Tree = new IntervalTree();
  const big = Number.MAX_SAFE_INTEGER;
  t.insert(big, big, 'top');
  t.insert(0, big, 'all');
  t.insert(0, 0, 'zero');
  assert.deepEqual(values(query(t, big, big)), ['all', 'top']);
  assert.deepEqual(values(query(t, 0, 0)), ['all', 'zero']);
  t.checkInvariants();
});

test('a node keeps its exact interval through removal, clear and re-insertion, at any size', () => {
  const t: Tree = new IntervalTree();
  const u: Tree = new IntervalTree();
  const cases: [number, number][] = [
    [3, 9],
    [2 ** 46 + 4096, 2 ** 46 + 8191],
    [2 ** 31 - 1, 2 ** 31],
    [Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER],
  ];
  const nodes = cases.map(([s, l], i) => t.insert(s, l, String(i)));
  const bounds = (n: TNode) => [n.start, n.last];
  const expectBounds = (when: string) => {
    for (const [i, n] of nodes.entries()) assert.deepEqual(bounds(n), cases[i], when);
  };
  expectBounds('while linked');
  t.remove(nodes[1]!);
  assert.deepEqual(bounds(nodes[1]!), cases[1], 'after remove');
  t.clear();
  expectBounds('after clear');
  for (const n of nodes) u.insertNode(n);
  expectBounds('after insertNode');
  assert.deepEqual(values(query(u, 2 ** 46 + 8191, 2 ** 46 + 8191)), ['1']);
  u.checkInvariants();
});
test('forEachOverlap visits in start order and stops when fn returns false', () => {
  const t: Tree = new IntervalTree();
  for (let i = 0; i < 10; i++) t.insert(i * 10, i * 10 + 15, String(i));
  const seen: string[] = [];
  assert.equal(
    t.forEachOverlap(20, 60, (n) => {
      seen.push(n.value);
    }),
    6,
  );
  assert.deepEqual(seen, ['1', '2', '3', '4', '5', '6']);
  const stopped: string[] = [];
  const calls = t.forEachOverlap(20, 60, (n) => {
    stopped.push(n.value);
    return stopped.length < 2;
  });
  assert.equal(calls, 2);
  assert.deepEqual(stopped, ['1', '2']);
  assert.equal(t.countOverlaps(20, 60), 6);
  assert.deepEqual(values(t.overlaps(20, 60)), seen);
});

test('iteration: Symbol.iterator, values(), first() and next() walk in start order', () => {
  const t: Tree = new IntervalTree();
  for (const s of [40, 10, 30, 20, 50]) t.insert(s, s + 1, String(s));
  assert.deepEqual(values(t), ['10', '20', '30', '40', '50']);
  assert.deepEqual([...t.values()], ['10', '20', '30', '40', '50']);
  const walked: string[] = [];
  for (let n = t.first(); n !== null; n = t.next(n)) walked.push(n.value);
  assert.deepEqual(walked, ['10', '20', '30', '40', '50']);
});

test('clear empties the tree and detaches every node', () => {
  const t: Tree = new IntervalTree();
  const nodes = Array.from({ length: 20 }, (_, i) => t.insert(i, i + 5, String(i)));
  t.clear();
  assert.equal(t.size, 0);
  assert.deepEqual([...t], []);
  for (const n of nodes) assert.equal(n.inTree, false);
  assert.throws(() => t.remove(nodes[3]!), einval(/not in any tree/));
  t.insertNode(nodes[3]!);
  assert.deepEqual(values(t), ['3']);
  t.checkInvariants();
});

test('checkInvariants detects a corrupted max, colour, order and handle', () => {
  const t: Tree = new IntervalTree();
  const nodes = Array.from({ length: 7 }, (_, i) => t.insert(i * 10, i * 10 + 5, String(i)));
  t.checkInvariants();
  const root = t.rootNode!.slot;
  const maxAt = 4 * root + 2;
  const saved = t.f64[maxAt]!;
  t.f64[maxAt] = 1;
  assert.throws(() => t.checkInvariants(), /caches max/);
  t.f64[maxAt] = saved;
  t.pc[root] = t.pc[root]! | 1;
  assert.throws(() => t.checkInvariants(), /root is red/);
  t.pc[root] = t.pc[root]! & ~1;
  t.checkInvariants();
  const s2 = nodes[2]!.slot;
  t.f64[4 * s2] = 0;
  assert.throws(() => t.checkInvariants(), /bad handle|out of start order/);
  t.f64[4 * s2] = 20;
  t.checkInvariants();
  t.handles[s2] = nodes[3]!;
  assert.throws(() => t.checkInvariants(), /bad handle/);
});

test('sorted and reverse-sorted insertion of 10,000 intervals stays balanced', () => {
  for (const dir of [1, -1]) {
    const t: Tree = new IntervalTree();
    for (let i = 0; i < 10_000; i++) {
      const s = dir > 0 ? i : 10_000 - i;
      t.insert(s, s + 2, '');
    }
    t.checkInvariants();
    let depth = 0;
    for (let s = t.first()!.slot; s !== 0; s = t.pc[s]! >> 1) depth++;
    assert.ok(depth <= 2 * Math.log2(10_001), `leftmost depth ${depth}`);
    assert.equal(t.countOverlaps(5000, 5000), 3);
  }
});
