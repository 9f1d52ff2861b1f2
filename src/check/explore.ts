import type { KernelBug } from '../kernel/bug.ts';
import type { Kernel, RunResult, StepLimitPolicy } from '../kernel/kernel.ts';
import { DfsStrategy } from '../kernel/strategies/dfs.ts';
import { PctStrategy } from '../kernel/strategies/pct.ts';
import { RandomStrategy } from '../kernel/strategies/random.ts';
import { ReplayStrategy } from '../kernel/strategies/replay.ts';
import { TimedStrategy } from '../kernel/strategies/timed.ts';
import type { Strategy, StrategyKind } from '../kernel/strategy.ts';
import { Errno } from '../lib/errors.ts';
import { checkExploreOptions } from './explore-options.ts';
import { minimise } from './minimise.ts';
import { decodeToken, encodeToken, type ReplayRecord } from './replay-token.ts';
import { type RunSettings, runWorld, type WorldBuilder } from './run-world.ts';

/** Options of {@link explore}. */
export interface ExploreOptions {
  /** How schedules are chosen. */
  readonly strategy: Exclude<StrategyKind, 'replay'>;
  /** Runs to try (default 1,000). */
  readonly runs?: number;
  /** Seed of the exploration (default 1); run i uses a seed derived from it. */
  readonly seed?: number;
  /** Step limit per run (default 100,000). */
  readonly maxSteps?: number;
  /** Fail (default) or pass a run that reaches the step limit. */
  readonly onStepLimit?: StepLimitPolicy;
  /** pct depth d (default 3). */
  readonly depth?: number;
  /** dfs preemption bound, 0–3 (default 2). */
  readonly preemptions?: number;
  /** Stop after this much wall time (measured by `clock`). */
  readonly timeBudgetMs?: number;
  /** Mutants enabled in every world. */
  readonly mutants?: readonly string[];
  /** Minimise a failing schedule before reporting it (default true). */
  readonly minimise?: boolean;
  /** Opaque world description stored in replay tokens (the CLI's scenario and parameters). */
  readonly world?: string;
  /** Called with each fresh kernel before the world is built. */
  readonly onKernel?: (kernel: Kernel) => void;
  /** Called after each run with the number of runs done. */
  readonly onProgress?: (runsDone: number) => void;
  /**
   * Wall clock in ms for `elapsedMs` and `timeBudgetMs` (the CLI passes its wall clock). The
   * library reads no real time itself: without a clock, elapsedMs is 0 and a time budget is
   * refused (EINVAL), so an exploration's outcome depends only on its options.
   */
  readonly clock?: () => number;
}

/** The first failure an exploration found, minimised. */
export interface ExploreFailure {
  readonly bug: KernelBug;
  /** The rule broken (`deadlock`, `lock-order`, an oracle's rule...). */
  readonly rule: string;
  /** The task in which it happened, if any. */
  readonly task: string | null;
  /** Index of the failing run. */
  readonly run: number;
  /** The minimised schedule's size, and the original's. */
  readonly steps: number;
  readonly preemptions: number;
  readonly original: { readonly steps: number; readonly preemptions: number };
  /** Decisions of the minimised schedule. */
  readonly decisions: readonly number[];
  /** Reproduces the minimised failure with {@link replay}. */
  readonly token: string;
}

/** Statistics and verdict of an exploration. */
export interface ExploreResult {
  readonly strategy: StrategyKind;
  readonly seed: number;
  readonly runs: number;
  readonly steps: number;
  readonly contextSwitches: number;
  readonly preemptions: number;
  readonly elapsedMs: number;
  /** Why it stopped. */
  readonly stoppedBy: 'runs' | 'time' | 'exhausted' | 'failure';
  /** dfs only: schedules covered and whether the bounded space was exhausted. */
  readonly dfs: { readonly schedules: number; readonly exhausted: boolean } | null;
  readonly failure: ExploreFailure | null;
}

/** The seed of run `i` of an exploration seeded `seed` (a 32-bit mix). */
export function runSeed(seed: number, i: number): number {
  let x = (seed ^ Math.imul(i + 1, 0x9e3779b9)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0 || 1;
}

const noClock = (): number => 0;

/**
 * Explores the interleavings of a world: builds a fresh world for each run, runs it under the
 * strategy, and stops at the first failure (a KernelBug or an ordinary exception), which it
 * minimises and returns with a replay token.
 */
export function explore(build: WorldBuilder, options: ExploreOptions): ExploreResult {
  const o = checkExploreOptions(options);
  if (options.timeBudgetMs !== undefined && options.clock === undefined) {
    throw new Errno(
      'EINVAL',
      'explore: timeBudgetMs needs a clock (pass options.clock, a wall clock in ms)',
    );
  }
  const clock = options.clock ?? noClock;
  const t0 = clock();
  const settings: RunSettings = {
    maxSteps: o.maxSteps,
    onStepLimit: o.onStepLimit,
    mutants: o.mutants,
    onKernel: options.onKernel,
  };
  const dfs = o.strategy === 'dfs' ? new DfsStrategy(o.preemptions) : null;
  let stepsEstimate = 0;
  if (o.strategy === 'pct')
    stepsEstimate = runWorld(build, new ReplayStrategy([], false), o.seed, settings).steps;

  let runs = 0;
  let steps = 0;
  let switches = 0;
  let preemptions = 0;
  let stoppedBy: ExploreResult['stoppedBy'] = 'runs';
  let failure: ExploreFailure | null = null;
  while (runs < o.runs) {
    if (o.timeBudgetMs !== undefined && runs > 0 && clock() - t0 >= o.timeBudgetMs) {
      stoppedBy = 'time';
      break;
    }
    const seed = dfs !== null || o.strategy === 'timed' ? o.seed : runSeed(o.seed, runs);
    const strategy: Strategy = dfs ?? makeStrategy(o.strategy, seed, o.depth, stepsEstimate);
    const result = runWorld(build, strategy, seed, settings);
    runs++;
    steps += result.steps;
    switches += result.switches;
    preemptions += result.preemptions;
    if (result.steps > stepsEstimate) stepsEstimate = result.steps;
    options.onProgress?.(runs);
    if (!result.ok) {
      failure = report(build, result, runs - 1, seed, settings, o);
      stoppedBy = 'failure';
      break;
    }
    if (dfs !== null && !dfs.advance()) {
      stoppedBy = 'exhausted';
      break;
    }
  }
  return {
    strategy: o.strategy,
    seed: o.seed,
    runs,
    steps,
    contextSwitches: switches,
    preemptions,
    elapsedMs: clock() - t0,
    stoppedBy,
    dfs: dfs === null ? null : { schedules: dfs.schedules, exhausted: dfs.exhausted },
    failure,
  };
}

function makeStrategy(kind: StrategyKind, seed: number, depth: number, steps: number): Strategy {
  if (kind === 'random') return new RandomStrategy(seed);
  if (kind === 'pct') return new PctStrategy(seed, depth, steps);
  return new TimedStrategy();
}

function report(
  build: WorldBuilder,
  result: RunResult,
  run: number,
  seed: number,
  settings: RunSettings,
  o: ReturnType<typeof checkExploreOptions>,
): ExploreFailure {
  const original = { decisions: result.decisions, result };
  const best = o.minimise ? minimise(build, original, seed, settings) : original;
  const bug = best.result.bug!;
  const record: ReplayRecord = {
    strategy: o.strategy,
    seed,
    maxSteps: o.maxSteps,
    decisions: best.decisions,
    mutants: o.mutants,
    world: o.world,
  };
  return {
    bug,
    rule: bug.rule,
    task: bug.task,
    run,
    steps: best.result.steps,
    preemptions: best.result.preemptions,
    original: { steps: result.steps, preemptions: result.preemptions },
    decisions: best.decisions,
    token: encodeToken(record),
  };
}

/** What {@link replay} returns: the run and the record it followed. */
export interface ReplayResult {
  readonly record: ReplayRecord;
  readonly result: RunResult;
}

/**
 * Reruns the schedule a token records, exactly: same world seed, same decisions, same mutants.
 * A run that does not follow the recording throws a ReplayDivergence.
 */
export function replay(
  build: WorldBuilder,
  token: string,
  options: { onKernel?: (kernel: Kernel) => void } = {},
): ReplayResult {
  const record = decodeToken(token);
  const settings: RunSettings = {
    maxSteps: record.maxSteps,
    onStepLimit: 'fail',
    mutants: record.mutants,
    onKernel: options.onKernel,
  };
  const result = runWorld(build, new ReplayStrategy(record.decisions, true), record.seed, settings);
  return { record, result };
}
