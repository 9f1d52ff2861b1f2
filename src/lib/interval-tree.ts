/**
 * The augmented interval tree of include/linux/interval_tree_generic.h: a red-black tree of
 * closed intervals `[start, last]` ordered by `start`, each node caching the largest `last` of
 * its subtree so an overlap query prunes every subtree that ends before the query begins.
 *
 * Nodes are handles, like the kernel's intrusive `struct interval_tree_node`: {@link
 * IntervalTree.insert} returns one, {@link IntervalTree.remove} takes it back in O(log n)
 * without searching. Identical intervals may be inserted any number of times; among equal
 * starts, in-order iteration gives insertion order (a new node goes right of its equals, as in
 * the kernel). Queries allocate nothing.
 *
 * Storage is packed: the tree keeps each node's interval, subtree max, links and colour in
 * typed arrays (./interval-tree-rb.ts, with the rebalancing), 36 bytes per node, so queries
 * touch one cache line per visited node and the garbage collector sees no per-node pointers.
 * A handle ({@link IntervalTreeNode}) carries the value and its slot; its interval lives in
 * the slot while linked and moves into the handle when the node is removed.
 */

import { checkIndex, describe, Errno } from './errors.ts';
import { F, PackedRbTree } from './interval-tree-rb.ts';

/**
 * A node of an {@link IntervalTree}: the handle of the kernel's `struct interval_tree_node`.
 * It is created by {@link IntervalTree.insert} (or by the constructor, for
 * {@link IntervalTree.insertNode}) and keeps its interval and value for its whole life, in or
 * out of a tree.
 */
export class IntervalTreeNode<T> {
  /** The payload given at insertion. */
  readonly value: T;
  /** @internal The node's slot in its tree's storage, 0 while in no tree. */
  slot: number;
  /** @internal The tree holding this node, or null while it is in none. */
  owner: IntervalTree<T> | null;
  /**
   * @internal The interval while detached. In a tree the slot holds it and these are stale:
   * keeping doubles beyond the small-integer range here would box two numbers per insert.
   * Starting as null keeps the fields' representation tagged, so a store never boxes a small
   * integer.
   */
  detachedStart: number | null = null;
  /** @internal See {@link detachedStart}. */
  detachedLast: number | null = null;

  /**
   * A detached node for `[start, last]`, for {@link IntervalTree.insertNode}. Throws EINVAL
   * naming the argument when `start` or `last` is not a non-negative safe integer or when
   * `start > last`.
   */
  constructor(start: number, last: number, value: T) {
    checkRange(start, last);
    this.detachedStart = start;
    this.detachedLast = last;
    this.value = value;
    this.slot = 0;
    this.owner = null;
  }

  /** First index covered (the kernel's `start`). */
  get start(): number {
    const t = this.owner;
    return t === null ? this.detachedStart! : t.f64[F * this.slot]!;
  }

  /** Last index covered, inclusive (the kernel's `last`). */
  get last(): number {
    const t = this.owner;
    return t === null ? this.detachedLast! : t.f64[F * this.slot + 1]!;
  }

  /**
   * True while the node is linked into a tree: the negation of the kernel's
   * `RB_EMPTY_NODE()` on a node that `RB_CLEAR_NODE()` reset at removal.
   */
  get inTree(): boolean {
    return this.owner !== null;
  }
}

/**
 * An augmented red-black interval tree: the kernel's `struct rb_root_cached` used through
 * `INTERVAL_TREE_DEFINE()`. Closed intervals of non-negative safe integers; duplicates allowed.
 */
export class IntervalTree<T> extends PackedRbTree implements Iterable<IntervalTreeNode<T>> {
  /** @internal The handle of each slot (null for slot 0 and free slots). */
  handles: (IntervalTreeNode<T> | null)[] = [null];
  /**
   * @internal The node {@link iterFirst} or {@link iterNext} last returned and its slot, so
   * the next `iterNext` on it starts from the slot without loading the handle: in a long
   * iteration that load would be a cache miss on the path from one result to the next. Always
   * null or a node linked in this tree ({@link remove} and {@link clear} drop it).
   */
  cursorNode: IntervalTreeNode<T> | null = null;
  /** @internal The slot of {@link cursorNode}. */
  cursorSlot = 0;

  /** Number of nodes in the tree, in O(1). */
  get size(): number {
    return this.count;
  }

  /**
   * `interval_tree_insert()`: links a new node for `[start, last]` carrying `value` and returns
   * it. O(log n). Throws EINVAL naming the argument on a bad interval; the tree is unchanged.
   */
  insert(start: number, last: number, value: T): IntervalTreeNode<T> {
    checkRange(start, last);
    // Small-integer placeholders: the slot holds the interval while the node is linked.
    const node = new IntervalTreeNode(0, 0, value);
    this.link(node, start, last);
    return node;
  }

  /**
   * `interval_tree_insert()` of an existing, detached node, as the MMU interval notifier does
   * when it replays a deferred insertion. Throws EINVAL if the node is already in a tree.
   */
  insertNode(node: IntervalTreeNode<T>): IntervalTreeNode<T> {
    if (!(node instanceof IntervalTreeNode)) {
      throw new Errno('EINVAL', `node must be an IntervalTreeNode, got ${describe(node)}`);
    }
    if (node.owner !== null) {
      throw new Errno(
        'EINVAL',
        node.owner === this
          ? 'node is already in this tree; remove it before inserting it again'
          : 'node is already in another tree; remove it from that tree first',
      );
    }
    this.link(node, node.detachedStart!, node.detachedLast!);
    return node;
  }

  /**
   * `interval_tree_remove()`: unlinks `node` in O(log n), without searching. Afterwards
   * `node.inTree` is false. Throws EINVAL when the node is not in this tree (already removed,
   * never inserted, or in another tree); the tree is then unchanged.
   */
  remove(node: IntervalTreeNode<T>): void {
    if (node === null || typeof node !== 'object' || node.owner !== this) {
      throw new Errno('EINVAL', this.foreignNodeMessage(node, 'remove'));
    }
    const s = node.slot;
    if (node === this.cursorNode) this.cursorNode = null;
    this.detach(node);
    this.unlinkSlot(s);
    this.handles[s] = null;
  }

  /** Removes every node (each one's `inTree` becomes false) and releases the storage. O(n). */
  clear(): void {
    const handles = this.handles;
    for (let s = 1; s < handles.length; s++) {
      const n = handles[s];
      if (n) this.detach(n);
    }
    this.handles = [null];
    this.cursorNode = null;
    this.resetStore();
  }

  /**
   * `interval_tree_iter_first()`: the overlapping node with the smallest start (first in
   * in-order among equal starts) for the closed query `[start, last]`, or null when none.
   * Touching endpoints overlap. Allocates nothing.
   */
  iterFirst(start: number, last: number): IntervalTreeNode<T> | null {
    checkRange(start, last);
    return this.cursorAt(this.firstSlot(start, last));
  }

  /**
   * `interval_tree_iter_next()`: the overlapping node after `node` in start order, or null.
   * `node` must be in this tree and come from {@link iterFirst} / `iterNext` with the same
   * `[start, last]`; the tree must not change in between (as in the kernel).
   */
  iterNext(node: IntervalTreeNode<T>, start: number, last: number): IntervalTreeNode<T> | null {
    checkRange(start, last);
    let s: number;
    if (node === this.cursorNode && node !== null) {
      s = this.cursorSlot;
    } else {
      if (node === null || typeof node !== 'object' || node.owner !== this) {
        throw new Errno('EINVAL', this.foreignNodeMessage(node, 'continue an iteration from'));
      }
      s = node.slot;
    }
    return this.cursorAt(this.nextSlot(s, start, last));
  }

  /** The handle of slot `s` (null for 0), remembered as the iteration cursor. */
  private cursorAt(s: number): IntervalTreeNode<T> | null {
    const node = this.handles[s]!;
    this.cursorNode = node;
    this.cursorSlot = s;
    return node;
  }

  /**
   * Calls `fn(node)` for each node overlapping `[start, last]`, in start order, and stops early
   * as soon as `fn` returns `false` (any other return value, `undefined` included, continues).
   * Returns the number of nodes `fn` was called on. `fn` must not modify the tree.
   * The loop of `interval_tree_iter_first()` / `interval_tree_iter_next()`.
   */
  forEachOverlap(start: number, last: number, fn: (node: IntervalTreeNode<T>) => unknown): number {
    checkRange(start, last);
    const handles = this.handles;
    let calls = 0;
    for (let s = this.firstSlot(start, last); s !== 0; s = this.nextSlot(s, start, last)) {
      calls++;
      if (fn(handles[s]!) === false) break;
    }
    return calls;
  }

  /** Number of nodes overlapping `[start, last]`, without allocating. */
  countOverlaps(start: number, last: number): number {
    checkRange(start, last);
    let k = 0;
    for (let s = this.firstSlot(start, last); s !== 0; s = this.nextSlot(s, start, last)) k++;
    return k;
  }

  /** The nodes overlapping `[start, last]` in start order, as a new array. */
  overlaps(start: number, last: number): IntervalTreeNode<T>[] {
    checkRange(start, last);
    const out: IntervalTreeNode<T>[] = [];
    for (let s = this.firstSlot(start, last); s !== 0; s = this.nextSlot(s, start, last)) {
      out.push(this.handles[s]!);
    }
    return out;
  }

  /** `rb_first_cached()`: the node with the smallest start, or null when empty. O(1). */
  first(): IntervalTreeNode<T> | null {
    return this.handles[this.leftmost]!;
  }

  /** `rb_next()`: the in-order successor of `node` (which must be in this tree), or null. */
  next(node: IntervalTreeNode<T>): IntervalTreeNode<T> | null {
    if (node === null || typeof node !== 'object' || node.owner !== this) {
      throw new Errno('EINVAL', this.foreignNodeMessage(node, 'step from'));
    }
    return this.handles[this.successor(node.slot)]!;
  }

  /** In-order iteration over the nodes (by start, then insertion order among equal starts). */
  *[Symbol.iterator](): IterableIterator<IntervalTreeNode<T>> {
    for (let s = this.leftmost; s !== 0; s = this.successor(s)) yield this.handles[s]!;
  }

  /** In-order iteration over the values. */
  *values(): IterableIterator<T> {
    for (let s = this.leftmost; s !== 0; s = this.successor(s)) yield this.handles[s]!.value;
  }

  /**
   * For tests: checks, in O(n), every structural invariant (parent links, start order, root
   * black, no red node with a red child, equal black heights, each cached subtree max, the
   * cached leftmost, handles and ownership, the free list and the size) and throws an Error
   * describing the first broken one. The tree keeps them by construction.
   */
  checkInvariants(): void {
    const { f64: f, i32, pc, handles } = this;
    if (f[2] !== -1 || pc[0] !== 0 || i32[6] !== 0 || i32[7] !== 0) fail('nil slot modified');
    let free = 0;
    for (let s = this.freeHead; s !== 0; s = i32[8 * s + 6]!) {
      if (handles[s] !== null || ++free > this.top) fail('free list is corrupt');
    }
    if (free + this.count !== this.top - 1) fail(`${free} free + ${this.count} != ${this.top - 1}`);
    if (handles.length !== this.top) fail('handle table length differs from slots in use');
    const root = this.root;
    if (root === 0) {
      if (this.count !== 0 || this.leftmost !== 0) fail('empty tree with size or leftmost');
      return;
    }
    if (pc[root]! >> 1 !== 0) fail('root has a parent');
    if ((pc[root]! & 1) === 1) fail('root is red');
    let seen = 0;
    let prevStart = -1;
    let leftmost = 0;
    // Recursion depth is at most 2 log2(n).
    const walk = (s: number): number => {
      const start = f[F * s]!;
      const last = f[F * s + 1]!;
      const at = `[${start}, ${last}]`;
      const h = handles[s];
      if (!h || h.slot !== s || h.owner !== this) {
        fail(`node ${at} has a bad handle`);
      }
      const red = (pc[s]! & 1) === 1;
      const l = i32[8 * s + 6]!;
      const r = i32[8 * s + 7]!;
      let max = last;
      let blackLeft = 1;
      if (l !== 0) {
        if (pc[l]! >> 1 !== s) fail(`left child of ${at} has a bad parent`);
        if (red && (pc[l]! & 1) === 1) fail(`red node ${at} has a red child`);
        blackLeft = walk(l);
        max = Math.max(max, f[F * l + 2]!);
      }
      seen++;
      if (leftmost === 0) leftmost = s;
      if (start < prevStart) fail(`node ${at} is out of start order`);
      prevStart = start;
      let blackRight = 1;
      if (r !== 0) {
        if (pc[r]! >> 1 !== s) fail(`right child of ${at} has a bad parent`);
        if (red && (pc[r]! & 1) === 1) fail(`red node ${at} has a red child`);
        blackRight = walk(r);
        max = Math.max(max, f[F * r + 2]!);
      }
      if (blackLeft !== blackRight) fail(`unequal black heights under ${at}`);
      if (f[F * s + 2] !== max) fail(`node ${at} caches max ${f[F * s + 2]}, expected ${max}`);
      return blackLeft + (red ? 0 : 1);
    };
    walk(root);
    if (seen !== this.count) fail(`size is ${this.count} but the tree holds ${seen} nodes`);
    if (leftmost !== this.leftmost) fail('cached leftmost is not the first node');
  }

  /** @internal The root's handle, for tests. */
  get rootNode(): IntervalTreeNode<T> | null {
    return this.handles[this.root]!;
  }

  private link(node: IntervalTreeNode<T>, start: number, last: number): void {
    const s = this.allocSlot(start, last);
    if (s === this.handles.length) this.handles.push(node);
    else this.handles[s] = node;
    node.slot = s;
    node.owner = this;
    this.linkSlot(s);
  }

  /** Copies the node's interval out of its slot and marks it as in no tree. */
  private detach(node: IntervalTreeNode<T>): void {
    const f = this.f64;
    node.detachedStart = f[F * node.slot]!;
    node.detachedLast = f[F * node.slot + 1]!;
    node.slot = 0;
    node.owner = null;
  }

  /** `interval_tree_iter_first()` on slots, arguments already checked. */
  private firstSlot(start: number, last: number): number {
    const root = this.root;
    const f = this.f64;
    if (f[F * root + 2]! < start) return 0; // also the empty tree: nil max is -1
    if (f[F * this.leftmost]! > last) return 0;
    return this.subtreeSearch(root, start, last);
  }

  /** `interval_tree_subtree_search()`: leftmost slot under `s` overlapping the query. */
  private subtreeSearch(s: number, start: number, last: number): number {
    const f = this.f64;
    const i32 = this.i32;
    for (;;) {
      // Loop invariant: start <= max(s). The nil slot's max (-1) fails every test below.
      // Both children's maxima are read before either is tested, so their two cache misses
      // overlap instead of following one another (the kernel reads the right one later).
      const l = i32[8 * s + 6]!;
      const r = i32[8 * s + 7]!;
      const lmax = f[F * l + 2]!;
      const rmax = f[F * r + 2]!;
      if (start <= lmax) {
        s = l;
        continue;
      }
      if (f[F * s]! > last) return 0;
      if (start <= f[F * s + 1]!) return s;
      if (rmax < start) return 0;
      s = r;
    }
  }

  /** `interval_tree_iter_next()` on slots. */
  private nextSlot(s: number, start: number, last: number): number {
    const f = this.f64;
    const i32 = this.i32;
    const pc = this.pc;
    let r = i32[8 * s + 7]!;
    for (;;) {
      // Loop invariant: start(s) <= last, r === right(s).
      if (start <= f[F * r + 2]!) return this.subtreeSearch(r, start, last);
      // Climb until we arrive from a left child.
      let prev: number;
      do {
        prev = s;
        s = pc[s]! >> 1;
        if (s === 0) return 0;
        r = i32[8 * s + 7]!;
      } while (prev === r);
      if (last < f[F * s]!) return 0;
      if (start <= f[F * s + 1]!) return s;
    }
  }

  private foreignNodeMessage(node: unknown, verb: string): string {
    if (!(node instanceof IntervalTreeNode)) {
      return `node must be an IntervalTreeNode, got ${describe(node)}`;
    }
    const where = `[${node.start}, ${node.last}]`;
    if (node.owner === null) {
      return `cannot ${verb} node ${where}: it is not in any tree (already removed?)`;
    }
    return `cannot ${verb} node ${where}: it belongs to another tree`;
  }
}

/** Validates a closed interval, naming the bad argument; never returns on bad input. */
function checkRange(start: number, last: number): void {
  if (
    typeof start !== 'number' ||
    typeof last !== 'number' ||
    !(start <= last) ||
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(last) ||
    start < 0
  ) {
    checkIndex(start, 'start');
    checkIndex(last, 'last');
    throw new Errno('EINVAL', `start (${start}) must not exceed last (${last})`);
  }
}

function fail(what: string): never {
  throw new Error(`interval tree invariant broken: ${what}`);
}
