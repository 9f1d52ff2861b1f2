/**
 * Seeded inputs for the interval-tree benchmark. Every library sees exactly the same intervals,
 * queries and removal order, drawn from the project's xorshift32 ({@link Prng}).
 */

import { Prng } from '../../src/lib/prng.ts';

export const WORKLOADS = ['uniform', 'mmu', 'sorted'] as const;
export type Workload = (typeof WORKLOADS)[number];

export const WORKLOAD_LABEL: Record<Workload, string> = {
  uniform: 'uniform short',
  mmu: 'MMU-like',
  sorted: 'sorted insertion',
};

/** Target expected result counts of the overlap queries. */
export const KS = [0, 1, 10, 100] as const;

export interface Intervals {
  start: Float64Array;
  last: Float64Array;
  /** Size of the coordinate space the starts are drawn from. */
  domain: number;
  /** Mean interval length, `last - start + 1`. */
  meanLen: number;
  /** Query starts are multiples of this (4096 for MMU-like ranges, else 1). */
  grain: number;
}

const PAGE = 4096;

/**
 * The intervals of a workload at size n.
 * - uniform: starts uniform in [0, 1024 n), lengths 1–64.
 * - mmu: as the kernel measurement: xorshift32 seeded 0x9e3779b9, starts floor(rnd·2^34)·4096,
 *   1–512 pages, 1% up to 262,144 pages; 5% reuse an earlier start (duplicate starts).
 * - sorted: the uniform intervals, inserted in increasing start order.
 */
export function makeIntervals(workload: Workload, n: number): Intervals {
  const start = new Float64Array(n);
  const last = new Float64Array(n);
  let total = 0;
  if (workload === 'mmu') {
    const rnd = new Prng(0x9e3779b9);
    for (let i = 0; i < n; i++) {
      let s: number;
      if (i > 0 && rnd.below(100) < 5) s = start[rnd.below(i)]!;
      else s = Math.floor(rnd.nextFloat() * 2 ** 34) * PAGE;
      const pages = rnd.below(100) === 0 ? 1 + rnd.below(262_144) : 1 + rnd.below(512);
      start[i] = s;
      last[i] = s + pages * PAGE - 1;
      total += pages * PAGE;
    }
    return { start, last, domain: 2 ** 34 * PAGE, meanLen: total / n, grain: PAGE };
  }
  const rnd = new Prng(0x1234567);
  const domain = 1024 * n;
  for (let i = 0; i < n; i++) {
    const s = rnd.below(domain);
    const len = 1 + rnd.below(64);
    start[i] = s;
    last[i] = s + len - 1;
    total += len;
  }
  if (workload === 'sorted') {
    const order = Array.from({ length: n }, (_, i) => i).sort(
      (a, b) => start[a]! - start[b]! || a - b,
    );
    const s2 = new Float64Array(n);
    const l2 = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s2[i] = start[order[i]!]!;
      l2[i] = last[order[i]!]!;
    }
    return { start: s2, last: l2, domain, meanLen: total / n, grain: 1 };
  }
  return { start, last, domain, meanLen: total / n, grain: 1 };
}

export interface Queries {
  start: Float64Array;
  last: Float64Array;
}

/**
 * `count` queries expected to hit about k intervals each among `live` of the workload's
 * intervals: a query of length L overlaps an interval of mean length m with probability about
 * (m + L) / domain. k = 0 uses point queries (16 pages for MMU-like, as the kernel run did).
 */
export function makeQueries(iv: Intervals, live: number, k: number, count: number, seed: number) {
  const rnd = new Prng(seed);
  let len: number;
  if (k === 0) len = iv.grain === PAGE ? 16 * PAGE : 1;
  else len = Math.max(1, Math.round((k * iv.domain) / live - iv.meanLen));
  len = Math.ceil(len / iv.grain) * iv.grain;
  const q: Queries = { start: new Float64Array(count), last: new Float64Array(count) };
  const slots = Math.floor(iv.domain / iv.grain);
  for (let i = 0; i < count; i++) {
    const s = Math.floor(rnd.nextFloat() * slots) * iv.grain;
    q.start[i] = s;
    q.last[i] = s + len - 1;
  }
  return q;
}

/** A seeded random permutation of [0, n) (Fisher–Yates): the removal order. */
export function permutation(n: number, seed: number): Int32Array {
  const rnd = new Prng(seed);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rnd.below(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
