// Running an exploration's runs on the main thread or on worker threads, interruptibly. Run i
// is a pure function of its index (check/explore.ts, Exploration), so any split of the range
// gives the runs one job would; the first violation by run index wins, as it does for one job.
import { Worker } from 'node:worker_threads';
import { Coverage, type CoverageData } from '../check/coverage.ts';
import type { Exploration, ExploreOptions, ExploreResult } from '../check/explore.ts';
import type { Kernel, RunResult } from '../kernel/kernel.ts';
import type { WorldRef } from './world-ref.ts';

/** A slice of the run range, [from, to). */
export interface Chunk {
  readonly from: number;
  readonly to: number;
}

/** What running a chunk did: runs [from, to) done, stopping early at a failure or a stop. */
export interface ChunkDone {
  readonly from: number;
  readonly to: number;
  readonly steps: number;
  readonly switches: number;
  readonly preemptions: number;
  readonly stepLimited: number;
  /** True when run `to - 1` failed. */
  readonly failed: boolean;
  /** dfs: the bounded space was exhausted after run `to - 1`. */
  readonly exhausted: boolean;
  /** The failing run's result, when the chunk ran on this thread (dfs cannot rerun it). */
  readonly result?: RunResult | undefined;
  /** With --coverage: what runs [from, to) reached. */
  readonly coverage?: CoverageData | undefined;
}

/** Everything a worker needs to rebuild the exploration. */
export interface WorkerInit {
  readonly world: WorldRef;
  readonly options: ExploreOptions;
  readonly stepsEstimate: number;
  /** Collect coverage (check/coverage.ts) of each chunk and send it back with the chunk. */
  readonly coverage: boolean;
}

/** The main thread yields to the event loop this often, so Ctrl-C is seen. */
const SLICE_MS = 50;

/** Runs a chunk on this thread, run by run; `stop()` ends it early. */
export async function runChunk(
  x: Exploration,
  c: Chunk,
  stop: () => boolean,
  clock: () => number,
  onRun: () => void,
): Promise<ChunkDone> {
  const d = { ...c, steps: 0, switches: 0, preemptions: 0, stepLimited: 0, failed: false };
  let exhausted = false;
  let failing: RunResult | undefined;
  let slice = clock();
  let i = c.from;
  while (i < c.to && !stop()) {
    const r = x.run(i);
    i++;
    d.steps += r.steps;
    d.switches += r.switches;
    d.preemptions += r.preemptions;
    if (r.stoppedAtLimit) d.stepLimited++;
    onRun();
    if (!r.ok) {
      d.failed = true;
      failing = r;
      break;
    }
    if (!x.advance()) {
      exhausted = true;
      break;
    }
    if (clock() - slice >= SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      slice = clock();
    }
  }
  return { ...d, to: i, exhausted, result: failing };
}

/**
 * Collects the coverage of each chunk apart: its {@link onKernel} (the exploration's hook)
 * attaches the chunk being run's collector to each run's kernel, and nothing outside a chunk
 * (the probe, minimisation and replays are not explored runs).
 */
export class ChunkCoverage {
  private current: Coverage | null = null;

  /** For ExploreOptions.onKernel. */
  readonly onKernel = (kernel: Kernel): void => {
    this.current?.attach(kernel);
  };

  /** Runs a chunk with `run`, adding what its runs reached to its ChunkDone. */
  async around(run: () => Promise<ChunkDone>): Promise<ChunkDone> {
    const coverage = new Coverage();
    this.current = coverage;
    try {
      const d = await run();
      return { ...d, coverage: coverage.data() };
    } finally {
      this.current = null;
    }
  }
}

/** A worker thread running chunks for {@link runChunk}'s protocol. */
export class ChunkWorker {
  private readonly worker: Worker;
  private pending: ((d: ChunkDone) => void) | null = null;
  private failure: ((e: Error) => void) | null = null;
  private current: Chunk | null = null;

  constructor(init: WorkerInit) {
    const ts = import.meta.url.endsWith('.ts');
    const url = new URL(`./explore-worker.${ts ? 'ts' : 'js'}`, import.meta.url);
    // Under tsx (tests, development) the worker registers the loader before importing the
    // entry: Node 20 does not apply an --import in a worker's execArgv to its main module.
    this.worker = ts
      ? new Worker(
          `import('tsx/esm/api').then((a) => { a.register(); return import(${JSON.stringify(url.href)}); });`,
          { eval: true, workerData: init },
        )
      : new Worker(url, { workerData: init });
    this.worker.on('message', (m: ChunkDone | { error: string }) => {
      const ok = this.pending;
      const fail = this.failure;
      this.pending = null;
      this.failure = null;
      if ('error' in m) fail?.(new Error(m.error));
      else ok?.(m);
    });
    this.worker.on('error', (e) => this.failure?.(e));
    // Terminated (Ctrl-C) mid-chunk: the chunk counts as not run, and its lane ends.
    this.worker.on('exit', () => {
      const c = this.current;
      const ok = this.pending;
      this.pending = null;
      this.failure = null;
      if (c !== null && ok !== null)
        ok({
          ...c,
          to: c.from,
          steps: 0,
          switches: 0,
          preemptions: 0,
          stepLimited: 0,
          failed: false,
          exhausted: false,
        });
    });
  }

  run(c: Chunk): Promise<ChunkDone> {
    return new Promise((resolve, reject) => {
      this.current = c;
      this.pending = resolve;
      this.failure = reject;
      this.worker.postMessage(c);
    });
  }

  stop(): Promise<number> {
    return this.worker.terminate();
  }
}

/** What the pool explored. */
export interface PoolResult {
  /** Runs [first, next) were all done (the contiguous prefix); `next` is where to resume. */
  readonly next: number;
  readonly steps: number;
  readonly switches: number;
  readonly preemptions: number;
  readonly stepLimited: number;
  /** The first failing run, when every run before it was done, and its result if at hand. */
  readonly failedRun: number | null;
  readonly failedResult: RunResult | undefined;
  /** A failing run seen beyond the prefix (an interrupted exploration), not known to be first. */
  readonly laterFailure: number | null;
  readonly stoppedBy: ExploreResult['stoppedBy'];
  /** Runs done in all, prefix or not (for the rate). */
  readonly done: number;
  /** The coverage of each chunk of the prefix that carried some, in run order. */
  readonly coverage: readonly CoverageData[];
}

/**
 * Explores [first, first + runs) with `lanes` (each runs one chunk at a time), handing out
 * chunks in order and none past a known failure; adds up the contiguous prefix.
 */
export async function runLanes(
  lanes: readonly ((c: Chunk) => Promise<ChunkDone>)[],
  first: number,
  runs: number,
  chunkSize: number,
  stopped: () => boolean,
): Promise<PoolResult> {
  const end = first + runs;
  let next = first;
  let failAt = Number.POSITIVE_INFINITY;
  let exhausted = false;
  const chunks: ChunkDone[] = [];
  await Promise.all(
    lanes.map(async (lane) => {
      while (!stopped() && !exhausted && next < end && next <= failAt) {
        const c = { from: next, to: Math.min(end, next + chunkSize) };
        next = c.to;
        const d = await lane(c);
        chunks.push(d);
        if (d.failed) failAt = Math.min(failAt, d.to - 1);
        if (d.exhausted) exhausted = true;
      }
    }),
  );
  chunks.sort((a, b) => a.from - b.from);
  const r = { next: first, steps: 0, switches: 0, preemptions: 0, stepLimited: 0, done: 0 };
  let failedRun: number | null = null;
  let failedResult: RunResult | undefined;
  let last: ChunkDone | null = null;
  const coverage: CoverageData[] = [];
  for (const d of chunks) r.done += d.to - d.from;
  for (const d of chunks) {
    if (d.from !== r.next || failedRun !== null) break;
    r.next = d.to;
    r.steps += d.steps;
    r.switches += d.switches;
    r.preemptions += d.preemptions;
    r.stepLimited += d.stepLimited;
    if (d.coverage !== undefined) coverage.push(d.coverage);
    last = d;
    if (d.failed) {
      failedRun = d.to - 1;
      failedResult = d.result;
    }
  }
  const laterFailure = failedRun === null && Number.isFinite(failAt) ? failAt : null;
  let stoppedBy: ExploreResult['stoppedBy'] = 'runs';
  if (failedRun !== null) stoppedBy = 'failure';
  else if (last?.exhausted === true) stoppedBy = 'exhausted';
  else if (r.next < end) stoppedBy = 'interrupted';
  return { ...r, failedRun, failedResult, laterFailure, stoppedBy, coverage };
}
