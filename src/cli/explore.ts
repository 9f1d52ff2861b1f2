// `odpsim explore <scenario>`: many runs under a search strategy, on worker threads when it pays;
// on a violation, the minimised schedule as a timeline and the replay token; on Ctrl-C, what was
// explored and where to resume.
import { availableParallelism } from 'node:os';
import { Coverage } from '../check/coverage.ts';
import { Exploration, type ExploreFailure, type ExploreOptions, replay } from '../check/explore.ts';
import { decodeToken } from '../check/replay-token.ts';
import { TraceRecorder } from '../kernel/trace-export.ts';
import { COVERAGE_UNIVERSE, formatCoverage } from './coverage-report.ts';
import {
  type Chunk,
  ChunkCoverage,
  type ChunkDone,
  ChunkWorker,
  type PoolResult,
  runChunk,
  runLanes,
} from './explore-pool.ts';
import type { Io } from './io.ts';
import type { ExploreJson } from './json.ts';
import { EXIT, UsageError } from './options.ts';
import { checkOutputs, reportWrites, writtenFiles, wroteLines } from './outputs.ts';
import {
  GENERATED_PROBE_RUNS,
  PROBE_MAX_STEPS,
  PROBE_RANDOM_RUNS,
  probeWorld,
  stepBudget,
} from './probe.ts';
import { progressBar } from './progress.ts';
import { formatMs, num, plural } from './report.ts';
import { describeSetup, refuseUnreached, type Setup, setup, worldJson } from './setup.ts';
import {
  buildTimeline,
  renderTimeline,
  type TimelineEntry,
  type TimelineMode,
} from './timeline.ts';
import { writeRecording } from './web-view.ts';
import { decodeWorld, describeTokenWorld, encodeWorld, worldBuilder } from './world.ts';

/** Options of `odpsim explore`. */
export interface ExploreCommandOptions {
  readonly strategy: 'random' | 'pct' | 'dfs';
  readonly runs: number;
  readonly seed: number;
  readonly depth: number;
  readonly preemptions: number;
  /** Undefined: sized from the world (see probe.ts). */
  readonly maxSteps: number | undefined;
  readonly set: Record<string, number>;
  readonly mutant: string[];
  readonly json: boolean;
  readonly startRun: number;
  /** 1-based shard index and count. */
  readonly shard: { readonly index: number; readonly count: number } | undefined;
  /** Undefined: all cores when the exploration is big enough to pay for the threads. */
  readonly jobs: number | undefined;
  readonly timeline: TimelineMode;
  readonly trace: string | undefined;
  readonly log: string | undefined;
  readonly html: string | undefined;
  /** Collect and print what the runs reached (check/coverage.ts). */
  readonly coverage?: boolean;
}

/**
 * Below this many steps in all (runs × the probe's length) worker threads cost more than they
 * save (each loads the model, about a third of a second): one job unless --jobs says otherwise.
 */
const PARALLEL_MIN_STEPS = 2_000_000;

/** The run range to explore: --start-run, --runs, and this shard's part of it. */
export function runRange(o: {
  readonly runs: number;
  readonly startRun: number;
  readonly shard: ExploreCommandOptions['shard'] | null;
}): { first: number; runs: number } {
  if (o.shard === undefined || o.shard === null) return { first: o.startRun, runs: o.runs };
  const { index, count } = o.shard;
  const lo = Math.floor((o.runs * (index - 1)) / count);
  const hi = Math.floor((o.runs * index) / count);
  return { first: o.startRun + lo, runs: hi - lo };
}

/** Explores the scenario's interleavings; resolves to the exit status. */
export async function exploreCommand(
  io: Io,
  name: string,
  opts: ExploreCommandOptions,
): Promise<number> {
  const s = setup(name, opts.set, opts.mutant);
  if (opts.strategy === 'dfs' && (opts.startRun !== 0 || opts.shard !== undefined))
    throw new UsageError(
      '--start-run and --shard are not for dfs: its schedules follow from the runs before them',
    );
  if (opts.strategy === 'dfs' && opts.jobs !== undefined && opts.jobs > 1)
    throw new UsageError('--jobs is not for dfs: its schedules follow from the runs before them');
  checkOutputs({ trace: opts.trace, log: opts.log, html: opts.html });
  const range = runRange(opts);
  if (range.runs === 0)
    throw new UsageError(
      `--shard ${opts.shard!.index}/${opts.shard!.count} of ${plural(opts.runs, 'run')} is empty (use fewer shards or more runs)`,
    );
  const r = await exploreWorld(io, s, opts, range);
  const f = r.failure;
  const rec = f === null ? null : record(s, f.token);
  const timeline: TimelineEntry[] = rec === null ? [] : buildTimeline(rec, opts.timeline);
  const written =
    rec === null
      ? { written: [], failed: [] }
      : writeRecording(
          rec,
          opts,
          s,
          `the minimised violation of run ${f!.run} (${opts.strategy}, seed ${opts.seed})`,
          f!.token,
        );
  const report: ExploreJson = {
    command: 'explore',
    ...worldJson(s),
    options: {
      strategy: opts.strategy,
      runs: opts.runs,
      seed: opts.seed,
      depth: opts.depth,
      preemptions: opts.preemptions,
      maxSteps: r.maxSteps,
      startRun: opts.startRun,
      shard: opts.shard ?? null,
      jobs: r.jobs,
      timeline: opts.timeline,
    },
    ok: f === null && r.laterFailure === null,
    result: {
      firstRun: range.first,
      runs: r.pool.next - range.first,
      nextRun: r.pool.next,
      steps: r.pool.steps,
      contextSwitches: r.pool.switches,
      preemptions: r.pool.preemptions,
      stepLimited: r.pool.stepLimited,
      stoppedBy: r.pool.stoppedBy,
      dfs: r.dfs,
    },
    failure: f === null ? null : failureJson(s, f, true, timeline),
    unconfirmedFailure: r.laterFailure === null ? null : failureJson(s, r.laterFailure, false, []),
    files: writtenFiles(written, opts),
    coverage: r.coverage?.report(COVERAGE_UNIVERSE) ?? null,
    elapsedMs: r.elapsedMs,
  };
  if (opts.json) io.out(JSON.stringify(report, null, 2));
  else {
    const lines = formatExplore(
      report,
      s,
      opts.trace !== undefined || opts.log !== undefined || opts.html !== undefined,
    );
    if (report.coverage !== null) lines.push('', ...formatCoverage(report.coverage));
    io.out(lines.join('\n'));
  }
  let status: number = report.ok ? EXIT.ok : EXIT.bug;
  if (r.pool.stoppedBy === 'interrupted' && report.ok) status = EXIT.interrupted;
  return reportWrites(io, written, status);
}

function failureJson(
  s: Setup,
  f: ExploreFailure,
  minimised: boolean,
  timeline: TimelineEntry[],
): NonNullable<ExploreJson['failure']> {
  const record = decodeToken(f.token);
  const world = describeTokenWorld({ ...s.spec, ...decodeWorld(record.world) }, record.seed);
  return {
    rule: f.rule,
    task: f.task,
    message: f.bug.message,
    token: f.token,
    run: f.run,
    minimised,
    steps: f.steps,
    preemptions: f.preemptions,
    original: f.original,
    world,
    timeline,
  };
}

/** The minimised schedule replayed with a recorder, for the timeline and the files. */
function record(s: Setup, token: string): TraceRecorder | null {
  let rec: TraceRecorder | null = null;
  // The token's world: minimisation may have left operations of a generated world out.
  const omit = decodeWorld(decodeToken(token).world).omit;
  replay(worldBuilder(omit === undefined ? s.spec : { ...s.spec, omit }), token, {
    onKernel: (k) => {
      rec = new TraceRecorder(k.trace);
    },
  });
  return rec;
}

/** What {@link exploreWorld} found. */
export interface Explored {
  readonly pool: PoolResult;
  readonly failure: ExploreFailure | null;
  readonly laterFailure: ExploreFailure | null;
  readonly dfs: ExploreJson['result']['dfs'];
  readonly maxSteps: number;
  readonly jobs: number;
  readonly elapsedMs: number;
  /** With --coverage: what the runs of [first, pool.next) reached; else null. */
  readonly coverage: Coverage | null;
}

/** Probes the world, runs the range on one or more lanes, and reports the first failure (minimised). */
export async function exploreWorld(
  io: Io,
  s: Setup,
  opts: ExploreCommandOptions,
  range: { first: number; runs: number },
): Promise<Explored> {
  const build = worldBuilder(s.spec);
  const t0 = io.now();
  const generated = s.spec.scenario.operations !== undefined;
  const probe = probeWorld(
    build,
    s.mutants,
    opts.seed,
    opts.maxSteps ?? PROBE_MAX_STEPS,
    generated ? GENERATED_PROBE_RUNS : PROBE_RANDOM_RUNS,
  );
  refuseUnreached(s, probe.sites);
  const maxSteps = opts.maxSteps ?? stepBudget(probe);
  const options: ExploreOptions = {
    strategy: opts.strategy,
    seed: opts.seed,
    depth: opts.depth,
    preemptions: opts.preemptions,
    maxSteps,
    // A run cut short is counted and reported, not called a bug: no scenario bounds liveness.
    onStepLimit: 'pass',
    mutants: s.mutants,
    world: encodeWorld(s.spec),
    startRun: range.first,
  };
  // The hook collects each chunk's coverage apart, and nothing of minimisation and replays.
  const chunkCoverage = opts.coverage === true ? new ChunkCoverage() : null;
  const x = new Exploration(
    build,
    chunkCoverage === null ? options : { ...options, onKernel: chunkCoverage.onKernel },
    probe.steps,
  );
  const jobs = jobsFor(opts, range.runs * Math.max(1, probe.steps));
  let stop = false;
  const workers: ChunkWorker[] = [];
  const off = io.onInterrupt(() => {
    stop = true;
    // Chunks in flight on workers are dropped (they are after the resume point anyway).
    for (const w of workers) void w.stop();
  });
  const stopped = (): boolean => stop;
  const bar = progressBar(io, range.runs, `exploring ${s.spec.scenario.name} (${opts.strategy})`);
  let done = 0;
  const tick = (n: number): void => {
    done += n;
    bar.update(done);
  };
  let pool: PoolResult;
  try {
    let lanes: ((c: Chunk) => Promise<ChunkDone>)[];
    if (jobs === 1) {
      const run = (c: Chunk) => () => runChunk(x, c, stopped, io.now, () => tick(1));
      lanes = [(c) => (chunkCoverage === null ? run(c)() : chunkCoverage.around(run(c)))];
    } else {
      const init = {
        world: { kind: 'scenario' as const, scenario: s.spec.scenario.name, params: s.spec.params },
        options,
        stepsEstimate: x.stepsEstimate,
        coverage: chunkCoverage !== null,
      };
      for (let i = 0; i < jobs; i++) workers.push(new ChunkWorker(init));
      lanes = workers.map((w) => async (c: Chunk) => {
        const d = await w.run(c);
        tick(d.to - d.from);
        return d;
      });
    }
    // dfs is one sequence; otherwise small chunks keep the lanes busy to the end.
    const chunk =
      opts.strategy === 'dfs'
        ? range.runs
        : Math.max(1, Math.min(64, Math.ceil(range.runs / (jobs * 16))));
    pool = await runLanes(lanes, range.first, range.runs, chunk, stopped);
  } finally {
    bar.stop();
    off();
    await Promise.all(workers.map((w) => w.stop()));
  }
  const failure =
    pool.failedRun === null
      ? null
      : x.report(pool.failedResult ?? x.run(pool.failedRun), pool.failedRun);
  // Interrupted with a violation beyond the explored prefix: report it as found, unminimised.
  const laterFailure =
    pool.laterFailure === null
      ? null
      : x.report(x.run(pool.laterFailure), pool.laterFailure, false);
  let coverage: Coverage | null = null;
  if (chunkCoverage !== null) {
    coverage = new Coverage();
    for (const d of pool.coverage) coverage.merge(d);
  }
  return {
    pool,
    failure,
    laterFailure,
    dfs: x.dfsState(),
    maxSteps,
    jobs,
    elapsedMs: io.now() - t0,
    coverage,
  };
}

/** --jobs, or all cores for an exploration big enough; dfs is one sequence. */
function jobsFor(opts: ExploreCommandOptions, steps: number): number {
  if (opts.strategy === 'dfs') return 1;
  if (opts.jobs !== undefined) return opts.jobs;
  return steps >= PARALLEL_MIN_STEPS ? Math.max(1, availableParallelism()) : 1;
}

function strategyLine(o: ExploreJson['options']): string {
  if (o.strategy === 'pct') return `pct (depth ${o.depth}), seed ${o.seed}`;
  if (o.strategy === 'dfs') return `dfs (at most ${plural(o.preemptions, 'preemption')})`;
  return `random, seed ${o.seed}`;
}

function rangeLine(r: ExploreJson): string {
  const o = r.options;
  const { firstRun } = r.result;
  const shard =
    o.shard === null
      ? ''
      : `shard ${o.shard.index}/${o.shard.count} of runs ${num(o.startRun)}..${num(o.startRun + o.runs - 1)}: `;
  const runs = runRange(o).runs;
  return `${shard}runs ${num(firstRun)}..${num(firstRun + runs - 1)} (numbered from 0), at most ${num(o.maxSteps)} steps each, ${plural(o.jobs, 'job')}`;
}

function formatExplore(r: ExploreJson, s: Setup, filesAsked: boolean): string[] {
  const res = r.result;
  const lines = [
    `odpsim explore: ${strategyLine(r.options)}, ${rangeLine(r)}`,
    ...describeSetup(s),
    '',
    `Explored ${plural(res.runs, 'run')}${res.runs > 0 ? ` (${num(res.firstRun)}..${num(res.nextRun - 1)})` : ''}, ${plural(res.steps, 'step')} (${plural(res.contextSwitches, 'context switch', 'context switches')}, ${plural(res.preemptions, 'preemption')})`,
  ];
  if (res.dfs !== null)
    lines.push(
      `  dfs: ${plural(res.dfs.schedules, 'schedule')}${res.dfs.exhausted ? ', the bounded space is exhausted' : ''}`,
    );
  if (res.stepLimited > 0)
    lines.push(
      `  ${plural(res.stepLimited, 'run')} stopped at the step limit (${num(r.options.maxSteps)} steps) and were checked only that far: not a bug; raise it with --max-steps`,
    );
  lines.push(`elapsed ${formatMs(r.elapsedMs)}`, '');
  if (res.stoppedBy === 'interrupted') {
    const done = `Interrupted: runs ${num(res.firstRun)}..${num(res.nextRun - 1)} are done`;
    lines.push(
      r.options.strategy === 'dfs'
        ? `${done}; dfs cannot resume from a run (each schedule follows from those before): rerun it whole`
        : `${done}; to go on, add --start-run ${res.nextRun} and --runs ${r.options.runs - (res.nextRun - r.options.startRun)} to the same command${r.options.shard === null ? '' : ' (without --shard)'}`,
    );
    const u = r.unconfirmedFailure;
    if (u !== null)
      lines.push(
        `A violation was seen in run ${num(u.run)} (runs before it were not all explored, so it may not be the first; not minimised):`,
        `  ${u.message}`,
        `Replay token: ${u.token}`,
      );
  }
  const f = r.failure;
  if (f === null) {
    if (res.stoppedBy !== 'interrupted')
      lines.push(
        res.stoppedBy === 'exhausted'
          ? 'Result: no violation in any schedule within the preemption bound'
          : 'Result: no violation found',
      );
    if (filesAsked) lines.push('(no violation, so no trace, log or web view was written)');
    return lines;
  }
  lines.push(
    `Violation found in run ${num(f.run)} (the ${ordinal(f.run - res.firstRun + 1)} run explored):`,
    `  ${f.message}`,
    `  minimised schedule: ${plural(f.steps, 'step')}, ${plural(f.preemptions, 'preemption')} (found with ${num(f.original.steps)} steps, ${num(f.original.preemptions)} preemptions)`,
    ...(f.world.length > 0
      ? ['', 'World of the run (generated from its seed):', ...f.world.map((l) => `  ${l}`)]
      : []),
    '',
    `Timeline of the minimised schedule (step, task, event; ${r.options.timeline === 'full' ? 'every event' : 'protocol events, --timeline full adds locks'}):`,
    ...renderTimeline(f.timeline),
    '',
    `Replay token: ${f.token}`,
    `  odpsim replay ${f.token} --trace trace.json   (Chrome trace JSON for Perfetto)`,
  );
  lines.push(...wroteLines(r.files));
  return lines;
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${num(n)}${suffix}`;
}
