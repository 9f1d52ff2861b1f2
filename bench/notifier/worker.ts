/**
 * One notifier benchmark child process, printing one JSON line:
 * - `worker.ts dispatch <tree|linear> <subs> <reps>`: ns per invalidateRangeStart +
 *   invalidateRangeEnd pair on one mm holding `subs` interval subscriptions (16 pages each,
 *   32 pages apart), for ranges hitting 0, 1 and 4 of them.
 * - `worker.ts read <reps>`: ns per mmuIntervalReadBegin + mmuIntervalReadRetry pair on an
 *   uncontended subscription, and two bare baselines.
 * Each measurement is calibrated to about TARGET_MS per repetition; the whole loop runs inside
 * one kernel task. Tracing is off. Needs `node --expose-gc`.
 */

import { Kernel } from '../../src/kernel/kernel.ts';
import type { Co } from '../../src/kernel/task.ts';
import { Prng } from '../../src/lib/prng.ts';
import { PAGE_SIZE } from '../../src/mm/constants.ts';
import { Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
} from '../../src/mm/mmu-interval-notifier.ts';
import { MmuIntervalNotifier } from '../../src/mm/mmu-interval-notifier-types.ts';
import type { ItreeDispatch } from '../../src/mm/mmu-interval-tree-state.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from '../../src/mm/mmu-notifier.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const collect = gc;

/** Wall time one repetition aims for. */
const TARGET_MS = 120;
/** Calibration stops doubling once a batch takes this long. */
const CALIBRATE_MS = 25;
/** Subscriptions: SUB_PAGES pages each, one every STRIDE_PAGES pages from BASE. */
const SUB_PAGES = 16;
const STRIDE_PAGES = 32;
const BASE = 0x1000_0000_0000;
/** Distinct invalidation ranges cycled through (a power of two). */
const RANGES = 1024;
export const HITS = [0, 1, 4] as const;

export interface DispatchResult {
  mode: ItreeDispatch;
  subs: number;
  /** Per hit count: ns per start+end pair, one per repetition. */
  ns: Record<string, number[]>;
  /** Pairs timed per repetition, per hit count. */
  iters: Record<string, number>;
  /** Kernel steps per pair, per hit count. */
  steps: Record<string, number>;
}

export interface ReadResult {
  model: number[];
  /** A plain function pair reading a field. */
  bare: number[];
  /** The same pair as generators called with yield* (no lock). */
  bareGen: number[];
  steps: number;
}

const subStart = (i: number) => BASE + i * STRIDE_PAGES * PAGE_SIZE;

/** [start, end) of a range hitting exactly `hits` subscriptions, beginning in subscription i. */
function rangeFor(i: number, hits: number): [number, number] {
  const s = subStart(i);
  if (hits === 0) return [s + SUB_PAGES * PAGE_SIZE, subStart(i + 1)];
  if (hits === 1) return [s + 4 * PAGE_SIZE, s + 8 * PAGE_SIZE];
  return [s + 8 * PAGE_SIZE, subStart(i + hits - 1) + 8 * PAGE_SIZE];
}

/**
 * Runs `batch(iters)` (which returns elapsed ms) with doubling iteration counts until a batch
 * takes CALIBRATE_MS, one warm-up batch of about TARGET_MS, then `reps` batches sized for
 * TARGET_MS from the warm-up's figure. Returns ns per iteration, one per repetition.
 */
function* calibrated(
  reps: number,
  batch: (iters: number) => Co<number>,
): Co<{ ns: number[]; iters: number }> {
  let iters = 4;
  let ms = yield* batch(iters);
  while (ms < CALIBRATE_MS) {
    iters *= 2;
    ms = yield* batch(iters);
  }
  // One full-size warm-up batch, then size the timed batches from its (warm) figure.
  iters = Math.max(1, Math.round((iters * TARGET_MS) / ms));
  ms = yield* batch(iters);
  iters = Math.max(1, Math.round((iters * TARGET_MS) / ms));
  const ns: number[] = [];
  for (let r = 0; r < reps; r++) ns.push(((yield* batch(iters)) * 1e6) / iters);
  return { ns, iters };
}

function runTask(body: (k: Kernel, m: Machine) => Co, dispatch: ItreeDispatch = 'tree'): void {
  const k = new Kernel({ maxSteps: Number.MAX_SAFE_INTEGER });
  const m = new Machine(k, { frames: 16, notifierDispatch: dispatch });
  k.spawn('bench', () => body(k, m));
  const r = k.run();
  if (!r.ok) throw new Error(`world failed: ${r.bug?.message}`);
}

/** The minimal driver: ->invalidate only publishes the sequence (and counts, for the check). */
let calls = 0;
const ops = {
  *invalidate(sub: MmuIntervalNotifier, _range: unknown, cur: number): Co<boolean> {
    calls++;
    mmuIntervalSetSeq(sub, cur);
    return true;
  },
};

function* insertSubs(mm: Mm, n: number): Co<MmuIntervalNotifier[]> {
  const subs: MmuIntervalNotifier[] = [];
  for (let i = 0; i < n; i++) {
    const sub = new MmuIntervalNotifier(ops);
    yield* mmuIntervalNotifierInsert(sub, mm, subStart(i), SUB_PAGES * PAGE_SIZE, ops);
    subs.push(sub);
  }
  return subs;
}

function dispatch(mode: ItreeDispatch, n: number, reps: number): DispatchResult {
  const out: DispatchResult = { mode, subs: n, ns: {}, iters: {}, steps: {} };
  runTask(function* (k, m) {
    const mm = m.createMm();
    yield* insertSubs(mm, n);
    if (mm.notifiers?.itree.tree.size !== n) throw new Error('subscriptions missing');
    const rnd = new Prng(0x5eed + n);
    for (const hits of HITS) {
      // Range starts spread over the whole set of subscriptions.
      const starts = new Float64Array(RANGES);
      const ends = new Float64Array(RANGES);
      for (let j = 0; j < RANGES; j++) {
        const [s, e] = rangeFor(rnd.below(n - Math.max(hits, 1) + 1), hits);
        starts[j] = s;
        ends[j] = e;
      }
      // Check: every range hits exactly `hits` subscriptions.
      calls = 0;
      for (let j = 0; j < RANGES; j++) {
        const range = rangeInit(mm, 'CLEAR', starts[j]!, ends[j]!);
        yield* invalidateRangeStart(range);
        yield* invalidateRangeEnd(range);
      }
      if (calls !== hits * RANGES)
        throw new Error(`${hits}-hit ranges made ${calls / RANGES} callbacks each`);
      collect();
      let steps = 0;
      const r = yield* calibrated(reps, function* (iters) {
        const s0 = k.steps;
        const t0 = performance.now();
        for (let i = 0; i < iters; i++) {
          const j = i & (RANGES - 1);
          const range = rangeInit(mm, 'CLEAR', starts[j]!, ends[j]!);
          yield* invalidateRangeStart(range);
          yield* invalidateRangeEnd(range);
        }
        const ms = performance.now() - t0;
        steps = (k.steps - s0) / iters;
        return ms;
      });
      out.ns[hits] = r.ns;
      out.iters[hits] = r.iters;
      out.steps[hits] = steps;
    }
  }, mode);
  return out;
}

/** The bare baseline: a begin/retry pair as plain functions reading a field. */
interface Seqd {
  seq: number;
}
function bareBegin(s: Seqd): number {
  return s.seq;
}
function bareRetry(s: Seqd, seq: number): boolean {
  return s.seq !== seq;
}
function* bareBeginGen(s: Seqd): Co<number> {
  return s.seq;
}

function read(reps: number): ReadResult {
  const out: ReadResult = { model: [], bare: [], bareGen: [], steps: 0 };
  runTask(function* (k, m) {
    const mm = m.createMm();
    // Other subscriptions around it, as a driver would have; none is being invalidated.
    const subs = yield* insertSubs(mm, 1000);
    const sub = subs[500]!;
    let retries = 0;
    const model = yield* calibrated(reps, function* (iters) {
      const s0 = k.steps;
      const t0 = performance.now();
      for (let i = 0; i < iters; i++) {
        const seq = yield* mmuIntervalReadBegin(sub);
        if (mmuIntervalReadRetry(sub, seq)) retries++;
      }
      const ms = performance.now() - t0;
      out.steps = (k.steps - s0) / iters;
      return ms;
    });
    if (retries !== 0) throw new Error(`${retries} retries on an uncontended subscription`);
    out.model = model.ns;
    const o: Seqd = { seq: 1 };
    let sink = 0;
    const bare = yield* calibrated(reps, function* (iters) {
      const t0 = performance.now();
      for (let i = 0; i < iters; i++) {
        const seq = bareBegin(o);
        if (bareRetry(o, seq)) sink++;
        o.seq = seq + (i & 2);
      }
      return performance.now() - t0;
    });
    out.bare = bare.ns;
    const gen = yield* calibrated(reps, function* (iters) {
      const t0 = performance.now();
      for (let i = 0; i < iters; i++) {
        const seq = yield* bareBeginGen(o);
        if (bareRetry(o, seq)) sink++;
        o.seq = seq + (i & 2);
      }
      return performance.now() - t0;
    });
    out.bareGen = gen.ns;
    if (sink !== 0) throw new Error('bare baseline retried');
  });
  return out;
}

const what = process.argv[2];
if (what === 'dispatch') {
  const mode = process.argv[3] as ItreeDispatch;
  if (mode !== 'tree' && mode !== 'linear') throw new Error(`unknown mode ${mode}`);
  console.log(JSON.stringify(dispatch(mode, Number(process.argv[4]), Number(process.argv[5]))));
} else if (what === 'read') {
  console.log(JSON.stringify(read(Number(process.argv[3] ?? '5'))));
} else throw new Error(`unknown case ${what}: expected dispatch or read`);
