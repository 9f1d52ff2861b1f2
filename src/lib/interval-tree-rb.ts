/**
 * The packed red-black core of the interval tree: node storage in typed arrays and the
 * rebalancing of include/linux/rbtree_augmented.h, where rotations and erasure keep every
 * node's cached subtree maximum of `last` exact. Internal to ./interval-tree.ts.
 *
 * Nodes are slots (small integers); slot 0 is the nil node. Each slot owns 32 bytes of one
 * buffer, so an overlap query reads one cache line per visited node:
 *
 *   f64[4s] start, f64[4s + 1] last, f64[4s + 2] subtree max, i32[8s + 6] left, i32[8s + 7] right
 *
 * and `pc[s]` packs the parent slot and the colour as `parent << 1 | red`, like the kernel's
 * `__rb_parent_color`. The nil slot has max -1 (below every start) and colour black, so the
 * search and fix-up loops need no null checks. Free slots are chained through their left link.
 */

/** Fields per slot in the Float64Array view (32 bytes). */
export const F = 4;
/** Offsets of the left and right links in the Int32Array view, per slot of 8 words. */
const L = 6;
const R = 7;

export class PackedRbTree {
  /** @internal start, last, max per slot (see the file comment). */
  f64: Float64Array;
  /** @internal The same buffer as int32: the child links. */
  i32: Int32Array;
  /** @internal Parent slot << 1 | red, per slot. */
  pc: Int32Array;
  /** @internal Root slot, 0 when empty. */
  root = 0;
  /** @internal Slot with the smallest start (the kernel's `rb_leftmost`), 0 when empty. */
  leftmost = 0;
  /** @internal Number of linked slots. */
  count = 0;
  /** @internal Slots ever handed out are 1..top-1. */
  top = 1;
  /** @internal Head of the free-slot list, 0 when empty. */
  freeHead = 0;

  constructor(capacity = 16) {
    const buf = new ArrayBuffer(capacity * F * 8);
    this.f64 = new Float64Array(buf);
    this.i32 = new Int32Array(buf);
    this.pc = new Int32Array(capacity);
    this.f64[2] = -1;
  }

  /** Number of slots the buffers hold. */
  get capacity(): number {
    return this.pc.length;
  }

  /** Takes a free slot for `[start, last]`, growing the buffers when full. */
  allocSlot(start: number, last: number): number {
    let s = this.freeHead;
    if (s !== 0) {
      this.freeHead = this.i32[8 * s + L]!;
    } else {
      s = this.top;
      if (s === this.pc.length) this.grow();
      this.top = s + 1;
    }
    const f = this.f64;
    f[F * s] = start;
    f[F * s + 1] = last;
    f[F * s + 2] = last;
    this.i32[8 * s + L] = 0;
    this.i32[8 * s + R] = 0;
    this.pc[s] = 1;
    return s;
  }

  /** Returns a slot to the free list. */
  freeSlot(s: number): void {
    this.i32[8 * s + L] = this.freeHead;
    this.i32[8 * s + R] = 0;
    this.pc[s] = 0;
    this.freeHead = s;
  }

  private grow(): void {
    const cap = this.pc.length * 2;
    if (cap > 2 ** 30) throw new RangeError('interval tree is full (2^30 nodes)');
    const buf = new ArrayBuffer(cap * F * 8);
    // Copy bytes, not doubles: int32 pairs read as float64 could be NaN and get canonicalised.
    new Uint8Array(buf).set(new Uint8Array(this.f64.buffer));
    this.f64 = new Float64Array(buf);
    this.i32 = new Int32Array(buf);
    const pc = new Int32Array(cap);
    pc.set(this.pc);
    this.pc = pc;
  }

  /** Forgets every slot and shrinks the buffers back. */
  resetStore(): void {
    const fresh = new PackedRbTree();
    this.f64 = fresh.f64;
    this.i32 = fresh.i32;
    this.pc = fresh.pc;
    this.root = 0;
    this.leftmost = 0;
    this.count = 0;
    this.top = 1;
    this.freeHead = 0;
  }

  /**
   * Links slot `z` as in `interval_tree_insert()`: walks down by start (equal starts go
   * right, so they keep insertion order), raising each subtree max on the way, then rebalances.
   */
  linkSlot(z: number): void {
    const f = this.f64;
    const i32 = this.i32;
    const start = f[F * z]!;
    const last = f[F * z + 1]!;
    let parent = 0;
    let cur = this.root;
    let isLeftmost = true;
    let goLeft = false;
    while (cur !== 0) {
      if (f[F * cur + 2]! < last) f[F * cur + 2] = last;
      parent = cur;
      if (start < f[F * cur]!) {
        goLeft = true;
        cur = i32[8 * cur + L]!;
      } else {
        goLeft = false;
        isLeftmost = false;
        cur = i32[8 * cur + R]!;
      }
    }
    this.pc[z] = (parent << 1) | 1;
    if (parent === 0) this.root = z;
    else if (goLeft) i32[8 * parent + L] = z;
    else i32[8 * parent + R] = z;
    if (isLeftmost) this.leftmost = z;
    this.count++;
    this.insertFixup(z);
  }

  /** `rb_erase_augmented()` of slot `z`, keeping the cached leftmost; frees the slot. */
  unlinkSlot(z: number): void {
    if (this.leftmost === z) this.leftmost = this.successor(z);
    this.erase(z);
    this.count--;
    this.freeSlot(z);
  }

  /** `rb_next()` on slots: the in-order successor of `s`, or 0. */
  successor(s: number): number {
    const i32 = this.i32;
    const pc = this.pc;
    let n = i32[8 * s + R]!;
    if (n !== 0) {
      let l = i32[8 * n + L]!;
      while (l !== 0) {
        n = l;
        l = i32[8 * n + L]!;
      }
      return n;
    }
    let cur = s;
    let parent = pc[cur]! >> 1;
    while (parent !== 0 && i32[8 * parent + R] === cur) {
      cur = parent;
      parent = pc[cur]! >> 1;
    }
    return parent;
  }

  /** The augment `compute` callback: the largest `last` under slot `n`. */
  private computeMax(n: number): number {
    const f = this.f64;
    let m = f[F * n + 1]!;
    const lm = f[F * this.i32[8 * n + L]! + 2]!;
    if (lm > m) m = lm;
    const rm = f[F * this.i32[8 * n + R]! + 2]!;
    if (rm > m) m = rm;
    return m;
  }

  /**
   * The augment `propagate` callback: recomputes maxima from `n` up to (not including) `stop`,
   * stopping once a value is unchanged (the ancestors then are too).
   */
  private propagate(n: number, stop: number): void {
    const f = this.f64;
    while (n !== stop && n !== 0) {
      const m = this.computeMax(n);
      if (f[F * n + 2] === m) break;
      f[F * n + 2] = m;
      n = this.pc[n]! >> 1;
    }
  }

  private setParent(n: number, p: number): void {
    this.pc[n] = (p << 1) | (this.pc[n]! & 1);
  }

  /** Hangs `child` where `old` hangs from its parent (or at the root). */
  private replaceChild(old: number, child: number): void {
    const parent = this.pc[old]! >> 1;
    if (child !== 0) this.setParent(child, parent);
    if (parent === 0) this.root = child;
    else if (this.i32[8 * parent + L] === old) this.i32[8 * parent + L] = child;
    else this.i32[8 * parent + R] = child;
  }

  /**
   * Rotation at `x` towards `side` (L: a left rotation, R: a right one), with the augment
   * `rotate` callback: the child that rises inherits the old subtree max of `x`.
   */
  private rotate(x: number, side: number): void {
    const i32 = this.i32;
    const f = this.f64;
    const other = L + R - side;
    const y = i32[8 * x + other]!;
    const b = i32[8 * y + side]!;
    i32[8 * x + other] = b;
    if (b !== 0) this.setParent(b, x);
    this.replaceChild(x, y);
    i32[8 * y + side] = x;
    this.setParent(x, y);
    f[F * y + 2] = f[F * x + 2]!;
    f[F * x + 2] = this.computeMax(x);
  }

  /**
   * `rb_insert_augmented()` after linking: restores the rules above the new red slot `z`.
   * The kernel writes the two mirror cases out; here `side` is the parent's side under the
   * grandparent and `other` the uncle's.
   */
  private insertFixup(z: number): void {
    const pc = this.pc;
    const i32 = this.i32;
    let p = pc[z]! >> 1;
    while (p !== 0 && (pc[p]! & 1) === 1) {
      const g = pc[p]! >> 1; // p is red, so it is not the root.
      const side = p === i32[8 * g + L] ? L : R;
      const other = L + R - side;
      const u = i32[8 * g + other]!;
      if ((pc[u]! & 1) === 1) {
        pc[p] = pc[p]! & ~1;
        pc[u] = pc[u]! & ~1;
        pc[g] = pc[g]! | 1;
        z = g;
        p = pc[z]! >> 1;
        continue;
      }
      if (z === i32[8 * p + other]) {
        this.rotate(p, side);
        z = p;
        p = pc[z]! >> 1;
      }
      pc[p] = pc[p]! & ~1;
      pc[g] = pc[g]! | 1;
      this.rotate(g, other);
      break;
    }
    const r = this.root;
    pc[r] = pc[r]! & ~1;
  }

  /** `__rb_erase_augmented()` + `____rb_erase_color()`: unlinks slot `z`. */
  private erase(z: number): void {
    const i32 = this.i32;
    const pc = this.pc;
    const f = this.f64;
    let x: number;
    let xParent: number;
    let removedRed: boolean;
    const zl = i32[8 * z + L]!;
    const zr = i32[8 * z + R]!;
    if (zl === 0 || zr === 0) {
      // At most one child: splice it into z's place.
      x = zl === 0 ? zr : zl;
      xParent = pc[z]! >> 1;
      removedRed = (pc[z]! & 1) === 1;
      this.replaceChild(z, x);
      this.propagate(xParent, 0);
    } else {
      // Two children: the successor y takes z's place, colour and (for now) max.
      let y = zr;
      for (let l = i32[8 * y + L]!; l !== 0; l = i32[8 * y + L]!) y = l;
      removedRed = (pc[y]! & 1) === 1;
      x = i32[8 * y + R]!;
      if (pc[y]! >> 1 === z) {
        xParent = y;
      } else {
        xParent = pc[y]! >> 1;
        i32[8 * xParent + L] = x;
        if (x !== 0) this.setParent(x, xParent);
        i32[8 * y + R] = zr;
        this.setParent(zr, y);
      }
      this.replaceChild(z, y);
      i32[8 * y + L] = zl;
      this.setParent(zl, y);
      pc[y] = (pc[y]! & ~1) | (pc[z]! & 1);
      f[F * y + 2] = f[F * z + 2]!;
      if (xParent !== y) this.propagate(xParent, y);
      this.propagate(y, 0);
    }
    if (!removedRed) this.eraseFixup(x, xParent);
  }

  /**
   * `____rb_erase_color()`: `x` (maybe nil, under `parent`) carries an extra black. As in
   * {@link insertFixup}, one body serves both mirror cases: `side` is x's side, `other` the
   * sibling's.
   */
  private eraseFixup(x: number, parent: number): void {
    const i32 = this.i32;
    const pc = this.pc;
    while (x !== this.root && (pc[x]! & 1) === 0) {
      const p = parent;
      const side = x === i32[8 * p + L] ? L : R;
      const other = L + R - side;
      let w = i32[8 * p + other]!;
      if ((pc[w]! & 1) === 1) {
        pc[w] = pc[w]! & ~1;
        pc[p] = pc[p]! | 1;
        this.rotate(p, side);
        w = i32[8 * p + other]!;
      }
      const near = i32[8 * w + side]!;
      let far = i32[8 * w + other]!;
      if ((pc[near]! & 1) === 0 && (pc[far]! & 1) === 0) {
        pc[w] = pc[w]! | 1;
        x = p;
        parent = pc[p]! >> 1;
        continue;
      }
      if ((pc[far]! & 1) === 0) {
        pc[near] = pc[near]! & ~1;
        pc[w] = pc[w]! | 1;
        this.rotate(w, other);
        w = i32[8 * p + other]!;
        far = i32[8 * w + other]!;
      }
      pc[w] = (pc[w]! & ~1) | (pc[p]! & 1);
      pc[p] = pc[p]! & ~1;
      pc[far] = pc[far]! & ~1;
      this.rotate(p, side);
      x = this.root;
      break;
    }
    if (x !== 0) pc[x] = pc[x]! & ~1;
  }
}
