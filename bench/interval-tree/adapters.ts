/**
 * One adapter per library. Each runs whole loops (build, queries, removals) so the timed code
 * calls its library directly; a child process only ever loads one adapter.
 */

import FlattenTree from '@flatten-js/interval-tree';
import NodeIntervalTreeModule from 'node-interval-tree';
import { IntervalTree, type IntervalTreeNode } from '../../src/lib/interval-tree.ts';
import type { Intervals, Queries } from './workloads.ts';

export const LIBRARIES = ['odpsim', 'flatten', 'nit'] as const;
export type Library = (typeof LIBRARIES)[number];

export const LIBRARY_LABEL: Record<Library, string> = {
  odpsim: 'odpsim',
  flatten: '@flatten-js/interval-tree 2.0.3',
  nit: 'node-interval-tree 2.1.2',
};

export interface Adapter {
  /** Inserts intervals 0..n-1 with value i into a fresh tree. */
  build(iv: Intervals, n: number): void;
  /** Runs every query; returns the total number of results. */
  queryAll(q: Queries): number;
  /** The values (interval indices) overlapping one query, for the correctness gate. */
  queryValues(s: number, l: number): number[];
  /** Removes intervals order[from..to). */
  removeAll(iv: Intervals, order: Int32Array, from: number, to: number): void;
  /** Drops the tree so it can be collected. */
  reset(): void;
  /** Keeps just the tree (no per-node handles of the caller) for the memory measurement. */
  buildForMemory(iv: Intervals, n: number): unknown;
}

class OdpsimAdapter implements Adapter {
  tree = new IntervalTree<number>();
  nodes: IntervalTreeNode<number>[] = [];
  build(iv: Intervals, n: number): void {
    const t = new IntervalTree<number>();
    const nodes: IntervalTreeNode<number>[] = new Array(n);
    const s = iv.start;
    const l = iv.last;
    for (let i = 0; i < n; i++) nodes[i] = t.insert(s[i]!, l[i]!, i);
    this.tree = t;
    this.nodes = nodes;
  }
  queryAll(q: Queries): number {
    const t = this.tree;
    let found = 0;
    let sum = 0;
    for (let i = 0; i < q.start.length; i++) {
      const s = q.start[i]!;
      const l = q.last[i]!;
      for (let n = t.iterFirst(s, l); n !== null; n = t.iterNext(n, s, l)) {
        found++;
        sum += n.value;
      }
    }
    return sum < 0 ? -1 : found;
  }
  queryValues(s: number, l: number): number[] {
    return this.tree.overlaps(s, l).map((n) => n.value);
  }
  removeAll(_iv: Intervals, order: Int32Array, from: number, to: number): void {
    const t = this.tree;
    const nodes = this.nodes;
    for (let i = from; i < to; i++) t.remove(nodes[order[i]!]!);
  }
  reset(): void {
    this.tree = new IntervalTree<number>();
    this.nodes = [];
  }
  buildForMemory(iv: Intervals, n: number): unknown {
    const t = new IntervalTree<number>();
    for (let i = 0; i < n; i++) t.insert(iv.start[i]!, iv.last[i]!, i);
    return t;
  }
}

class FlattenAdapter implements Adapter {
  tree = new FlattenTree<number>();
  build(iv: Intervals, n: number): void {
    const t = new FlattenTree<number>();
    for (let i = 0; i < n; i++) t.insert([iv.start[i]!, iv.last[i]!], i);
    this.tree = t;
  }
  queryAll(q: Queries): number {
    const t = this.tree;
    let found = 0;
    let sum = 0;
    for (let i = 0; i < q.start.length; i++) {
      const r = t.search([q.start[i]!, q.last[i]!]);
      found += r.length;
      for (let j = 0; j < r.length; j++) sum += r[j]!;
    }
    return sum < 0 ? -1 : found;
  }
  queryValues(s: number, l: number): number[] {
    return this.tree.search([s, l]);
  }
  removeAll(iv: Intervals, order: Int32Array, from: number, to: number): void {
    const t = this.tree;
    for (let i = from; i < to; i++) {
      const j = order[i]!;
      t.remove([iv.start[j]!, iv.last[j]!], j);
    }
  }
  reset(): void {
    this.tree = new FlattenTree<number>();
  }
  buildForMemory(iv: Intervals, n: number): unknown {
    const t = new FlattenTree<number>();
    for (let i = 0; i < n; i++) t.insert([iv.start[i]!, iv.last[i]!], i);
    return t;
  }
}

// node-interval-tree is CommonJS with `exports.default`; from ESM its default export is the
// module object, so take `.default` (the DataIntervalTree the README documents).
const NodeIntervalTree = NodeIntervalTreeModule.default;

class NitAdapter implements Adapter {
  tree = new NodeIntervalTree<number>();
  build(iv: Intervals, n: number): void {
    const t = new NodeIntervalTree<number>();
    for (let i = 0; i < n; i++) t.insert(iv.start[i]!, iv.last[i]!, i);
    this.tree = t;
  }
  queryAll(q: Queries): number {
    const t = this.tree;
    let found = 0;
    let sum = 0;
    for (let i = 0; i < q.start.length; i++) {
      const r = t.search(q.start[i]!, q.last[i]!);
      found += r.length;
      for (let j = 0; j < r.length; j++) sum += r[j]!;
    }
    return sum < 0 ? -1 : found;
  }
  queryValues(s: number, l: number): number[] {
    return this.tree.search(s, l);
  }
  removeAll(iv: Intervals, order: Int32Array, from: number, to: number): void {
    const t = this.tree;
    for (let i = from; i < to; i++) {
      const j = order[i]!;
      t.remove(iv.start[j]!, iv.last[j]!, j);
    }
  }
  reset(): void {
    this.tree = new NodeIntervalTree<number>();
  }
  buildForMemory(iv: Intervals, n: number): unknown {
    const t = new NodeIntervalTree<number>();
    for (let i = 0; i < n; i++) t.insert(iv.start[i]!, iv.last[i]!, i);
    return t;
  }
}

export function makeAdapter(lib: Library): Adapter {
  if (lib === 'odpsim') return new OdpsimAdapter();
  if (lib === 'flatten') return new FlattenAdapter();
  return new NitAdapter();
}
