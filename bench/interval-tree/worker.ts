/**
 * One benchmark child process: `worker.ts gate <lib>` checks a library against brute force;
 * `worker.ts time <lib> <n> <runs>` times it on every workload at size n. Prints one JSON line.
 * Needs `node --expose-gc`.
 */

import { performance } from 'node:perf_hooks';
import { LIBRARIES, type Library, makeAdapter } from './adapters.ts';
import {
  type Intervals,
  KS,
  makeIntervals,
  makeQueries,
  permutation,
  WORKLOADS,
  type Workload,
} from './workloads.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

export interface QueryCell {
  /** Mean results per query actually observed. */
  meanK: number;
  nsPerQuery: number[];
  nsPerResult: number[];
}

export interface WorkloadResult {
  build: number[];
  remove: number[];
  query: Record<string, QueryCell>;
  queryAfter: Record<string, QueryCell>;
  bytesPerNode: number;
}

export interface TimeResult {
  lib: Library;
  n: number;
  workloads: Record<string, WorkloadResult>;
}

export interface GateResult {
  lib: Library;
  ok: boolean;
  detail: string;
}

/** Queries per k and size: fewer at large n and large k so a run stays short. */
function queryCount(n: number, k: number): number {
  const base = n >= 1_000_000 ? 10_000 : 20_000;
  return k >= 100 ? base / 10 : k >= 10 ? base / 2 : base;
}

function bruteForce(iv: Intervals, alive: Uint8Array, s: number, l: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < alive.length; i++) {
    if (alive[i] === 1 && iv.start[i]! <= l && s <= iv.last[i]!) out.push(i);
  }
  return out;
}

function gate(lib: Library): GateResult {
  const n = 10_000;
  for (const w of WORKLOADS) {
    const iv = makeIntervals(w, n);
    const a = makeAdapter(lib);
    a.build(iv, n);
    const alive = new Uint8Array(n).fill(1);
    const order = permutation(n, 0xbeef);
    for (const phase of [0, 1]) {
      if (phase === 1) {
        a.removeAll(iv, order, 0, n / 2);
        for (let i = 0; i < n / 2; i++) alive[order[i]!] = 0;
      }
      // 1,000 queries in all: 125 per k target and phase.
      for (const k of KS) {
        const q = makeQueries(iv, n, k, 125, 0x600d + k + phase * 1000);
        for (let i = 0; i < q.start.length; i++) {
          const s = q.start[i]!;
          const l = q.last[i]!;
          const want = bruteForce(iv, alive, s, l);
          const got = a.queryValues(s, l).sort((x, y) => x - y);
          if (got.length !== want.length || got.some((v, j) => v !== want[j])) {
            const what = phase === 0 ? 'after build' : 'after removing half';
            return {
              lib,
              ok: false,
              detail: `${w} ${what}: query [${s}, ${l}] returned ${got.length} results, brute force ${want.length}`,
            };
          }
        }
      }
    }
  }
  return { lib, ok: true, detail: '1,000 queries per workload match brute force' };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeQueries(
  a: ReturnType<typeof makeAdapter>,
  qs: ReturnType<typeof makeQueries>[],
  cells: Record<string, QueryCell>,
): void {
  KS.forEach((k, idx) => {
    const q = qs[idx]!;
    // Untimed warm-up on a tenth of the batch (same for every library): caches and JIT.
    a.queryAll({
      start: q.start.subarray(0, q.start.length / 10),
      last: q.last.subarray(0, q.last.length / 10),
    });
    const t0 = performance.now();
    const found = a.queryAll(q);
    const ns = (performance.now() - t0) * 1e6;
    const cell = cells[k] ?? { meanK: 0, nsPerQuery: [], nsPerResult: [] };
    cells[k] = cell;
    cell.meanK = found / q.start.length;
    cell.nsPerQuery.push(ns / q.start.length);
    cell.nsPerResult.push(found === 0 ? Number.NaN : ns / found);
  });
}

function timeWorkload(lib: Library, w: Workload, n: number, runs: number): WorkloadResult {
  const iv = makeIntervals(w, n);
  const order = permutation(n, 0xbeef);
  const qs = KS.map((k) => makeQueries(iv, n, k, queryCount(n, k), 0x5eed + k));
  const r: WorkloadResult = { build: [], remove: [], query: {}, queryAfter: {}, bytesPerNode: 0 };
  const a = makeAdapter(lib);
  for (let run = 0; run < runs; run++) {
    a.reset();
    gc!();
    let t0 = performance.now();
    a.build(iv, n);
    r.build.push(((performance.now() - t0) * 1e6) / n);
    timeQueries(a, qs, r.query);
    t0 = performance.now();
    a.removeAll(iv, order, 0, n / 2);
    r.remove.push(((performance.now() - t0) * 1e6) / (n / 2));
    timeQueries(a, qs, r.queryAfter);
  }
  a.reset();
  // Heap bytes per node: the tree alone (no caller-side handle array), after full GCs.
  gc!();
  gc!();
  const m0 = process.memoryUsage();
  const kept = a.buildForMemory(iv, n);
  gc!();
  gc!();
  const m1 = process.memoryUsage();
  if (kept === null) throw new Error('unreachable: keeps the tree alive across the GCs');
  r.bytesPerNode = (m1.heapUsed - m0.heapUsed + (m1.arrayBuffers - m0.arrayBuffers)) / n;
  for (const c of [r.query, r.queryAfter]) {
    for (const cell of Object.values(c)) {
      cell.nsPerQuery = [median(cell.nsPerQuery)];
      cell.nsPerResult = [median(cell.nsPerResult)];
    }
  }
  return r;
}

const [mode, libArg, nArg, runsArg] = process.argv.slice(2);
const lib = libArg as Library;
if (!LIBRARIES.includes(lib)) throw new Error(`unknown library ${libArg}`);
if (mode === 'gate') {
  process.stdout.write(`${JSON.stringify(gate(lib))}\n`);
} else if (mode === 'time') {
  const n = Number(nArg);
  const runs = Number(runsArg ?? 5);
  const out: TimeResult = { lib, n, workloads: {} };
  for (const w of WORKLOADS) out.workloads[w] = timeWorkload(lib, w, n, runs);
  process.stdout.write(`${JSON.stringify(out)}\n`);
} else {
  throw new Error(`usage: worker.ts gate|time <lib> [n] [runs]`);
}
