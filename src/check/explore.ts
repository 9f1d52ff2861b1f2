import type { CostOverrides } from '../cost/model.ts';
import type { KernelBug } from '../kernel/bug.ts';
import type { Kernel, RunResult, StepLimitPolicy } from '../kernel/kernel.ts';
import { DfsStrategy } from '../kernel/strategies/dfs.ts';
import { PctStrategy } from '../kernel/strategies/pct.ts';
import { RandomStrategy } from '../kernel/strategies/random.ts';
import { ReplayStrategy } from '../kernel/strategies/replay.ts';
import { TimedStrategy } from '../kernel/strategies/timed.ts';
import type { Strategy, StrategyKind } from '../kernel/strategy.ts';
import { Errno } from '../lib/errors.ts';
import { type CheckedExploreOptions, checkExploreOptions } from './explore-options.ts';
import { minimise, reduceWorld } from './minimise.ts';
import { decodeToken, encodeToken, type ReplayRecord } from './replay-token.ts';
import { runSeed } from './run-seed.ts';
import { type RunSettings, runWorld, type WorldBuilder } from './run-world.ts';

/** Options of {@link explore}. */
export interface ExploreOptions {
  /** How schedules are chosen. */
  readonly strategy: Exclude<StrategyKind, 'replay'>;
  /** Runs to try (default 1,000). */
  readonly runs?: number;
  /** Seed of the exploration (default 1); run i uses a seed derived from it. */
  readonly seed?: number;
  /**
   * Index of the first run (default 0): runs [startRun, startRun + runs) are explored. Run i is
   * the same whatever the range, so an interrupted exploration continues where it stopped and
   * shards of one space split it. Not for dfs, whose runs depend on the ones before.
   */
  readonly startRun?: number;
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
  /**
   * Cost table overrides for every run (see cost/table.ts). They change virtual time, so the
   * timed strategy's order; the other strategies choose without looking at time.
   */
  readonly costs?: CostOverrides;
  /** Called after each run with the number of runs done. */
  readonly onProgress?: (runsDone: number) => void;
  /** Polled between runs: true stops the exploration (`stoppedBy: 'interrupted'`). */
  readonly shouldStop?: () => boolean;
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
  /** Index of the failing run (0-based, as `startRun`). */
  readonly run: number;
  /** The minimised schedule's size, and the original's. */
  readonly steps: number;
  readonly preemptions: number;
  readonly original: { readonly steps: number; readonly preemptions: number };
  /** Decisions of the minimised schedule. */
  readonly decisions: readonly number[];
  /**
   * A generated world's operations, and how many the minimised failure kept (the others are
   * left out of its replay token's world); null for a world that cannot be reduced.
   */
  readonly world: { readonly operations: number; readonly kept: number } | null;
  /** Reproduces the minimised failure with {@link replay}. */
  readonly token: string;
}

/** Statistics and verdict of an exploration. */
export interface ExploreResult {
  readonly strategy: StrategyKind;
  readonly seed: number;
  /** Index of the first run explored. */
  readonly firstRun: number;
  /** Runs done: [firstRun, firstRun + runs). */
  readonly runs: number;
  readonly steps: number;
  readonly contextSwitches: number;
  readonly preemptions: number;
  /** Runs stopped at the step limit under the 'pass' policy (not checked to their end). */
  readonly stepLimited: number;
  readonly elapsedMs: number;
  /** Why it stopped. */
  readonly stoppedBy: 'runs' | 'time' | 'exhausted' | 'failure' | 'interrupted';
  /** dfs only: schedules covered and whether the bounded space was exhausted. */
  readonly dfs: { readonly schedules: number; readonly exhausted: boolean } | null;
  readonly failure: ExploreFailure | null;
}

export { runSeed } from './run-seed.ts';

const noClock = (): number => 0;

/**
 * One exploration's runs, each a pure function of its index (dfs excepted: its next schedule
 * depends on the runs before). The CLI's worker threads each hold one and run the indices they
 * are given; {@link explore} runs them in order.
 */
export class Exploration {
  readonly o: CheckedExploreOptions;
  readonly settings: RunSettings;
  /** pct's estimate of a run's length: the non-preemptive run's steps (fixed, so run i depends on i alone). */
  readonly stepsEstimate: number;
  private readonly dfs: DfsStrategy | null;

  constructor(
    private readonly build: WorldBuilder,
    options: ExploreOptions,
    stepsEstimate?: number,
  ) {
    this.o = checkExploreOptions(options);
    this.settings = {
      maxSteps: this.o.maxSteps,
      onStepLimit: this.o.onStepLimit,
      mutants: this.o.mutants,
      onKernel: options.onKernel,
      ...(options.costs === undefined ? {} : { costs: options.costs }),
    };
    this.dfs = this.o.strategy === 'dfs' ? new DfsStrategy(this.o.preemptions) : null;
    if (this.dfs !== null && this.o.startRun !== 0)
      throw new Errno(
        'EINVAL',
        'explore: startRun is not for dfs (its runs depend on the ones before)',
      );
    this.stepsEstimate =
      stepsEstimate ??
      (this.o.strategy === 'pct'
        ? runWorld(build, new ReplayStrategy([], false), this.o.seed, this.settings).steps
        : 0);
  }

  /** The world seed of run `i`. */
  seedOf(i: number): number {
    return this.dfs !== null || this.o.strategy === 'timed' ? this.o.seed : runSeed(this.o.seed, i);
  }

  /** Runs run `i` (dfs: the next schedule, whatever `i`). */
  run(i: number): RunResult {
    const seed = this.seedOf(i);
    const strategy: Strategy = this.dfs ?? makeStrategy(this.o, seed, this.stepsEstimate);
    return runWorld(this.build, strategy, seed, this.settings);
  }

  /** dfs: moves to the next schedule; false when the bounded space is exhausted. */
  advance(): boolean {
    return this.dfs === null || this.dfs.advance();
  }

  /** dfs: what was covered; null for the other strategies. */
  dfsState(): ExploreResult['dfs'] {
    return this.dfs === null
      ? null
      : { schedules: this.dfs.schedules, exhausted: this.dfs.exhausted };
  }

  /** Minimises (unless told not to) run `i`'s failure `result` and makes its token. */
  report(result: RunResult, i: number, minimised = this.o.minimise): ExploreFailure {
    const o = this.o;
    const seed = this.seedOf(i);
    const original = { decisions: result.decisions, result };
    // A generated world first loses the operations the failure does not need, then its
    // schedule the preemptions.
    const reduced = minimised ? reduceWorld(this.build, original, seed, this.settings) : null;
    const best = reduced
      ? minimise(reduced.build, reduced.schedule, seed, this.settings)
      : original;
    const bug = best.result.bug!;
    const record: ReplayRecord = {
      strategy: o.strategy,
      seed,
      maxSteps: o.maxSteps,
      decisions: best.decisions,
      mutants: o.mutants,
      world: reduced?.world ?? o.world,
    };
    return {
      bug,
      rule: bug.rule,
      task: bug.task,
      run: i,
      steps: best.result.steps,
      preemptions: best.result.preemptions,
      original: { steps: result.steps, preemptions: result.preemptions },
      decisions: best.decisions,
      world:
        reduced === null || reduced.operations === 0
          ? null
          : { operations: reduced.operations, kept: reduced.kept },
      token: encodeToken(record),
    };
  }
}

/**
 * Explores the interleavings of a world: builds a fresh world for each run, runs it under the
 * strategy, and stops at the first failure (a KernelBug or an ordinary exception), which it
 * minimises and returns with a replay token.
 */
export function explore(build: WorldBuilder, options: ExploreOptions): ExploreResult {
  if (options.timeBudgetMs !== undefined && options.clock === undefined) {
    throw new Errno(
      'EINVAL',
      'explore: timeBudgetMs needs a clock (pass options.clock, a wall clock in ms)',
    );
  }
  const x = new Exploration(build, options);
  const o = x.o;
  const clock = options.clock ?? noClock;
  const t0 = clock();
  let runs = 0;
  let steps = 0;
  let switches = 0;
  let preemptions = 0;
  let stepLimited = 0;
  let stoppedBy: ExploreResult['stoppedBy'] = 'runs';
  let failure: ExploreFailure | null = null;
  while (runs < o.runs) {
    if (o.timeBudgetMs !== undefined && runs > 0 && clock() - t0 >= o.timeBudgetMs) {
      stoppedBy = 'time';
      break;
    }
    if (options.shouldStop?.() === true) {
      stoppedBy = 'interrupted';
      break;
    }
    const i = o.startRun + runs;
    const result = x.run(i);
    runs++;
    steps += result.steps;
    switches += result.switches;
    preemptions += result.preemptions;
    if (result.stoppedAtLimit) stepLimited++;
    options.onProgress?.(runs);
    if (!result.ok) {
      failure = x.report(result, i);
      stoppedBy = 'failure';
      break;
    }
    if (!x.advance()) {
      stoppedBy = 'exhausted';
      break;
    }
  }
  return {
    strategy: o.strategy,
    seed: o.seed,
    firstRun: o.startRun,
    runs,
    steps,
    contextSwitches: switches,
    preemptions,
    stepLimited,
    elapsedMs: clock() - t0,
    stoppedBy,
    dfs: x.dfsState(),
    failure,
  };
}

function makeStrategy(o: CheckedExploreOptions, seed: number, steps: number): Strategy {
  if (o.strategy === 'random') return new RandomStrategy(seed);
  if (o.strategy === 'pct') return new PctStrategy(seed, o.depth, steps);
  return new TimedStrategy();
}

/** What {@link replay} returns: the run and the record it followed. */
export interface ReplayResult {
  readonly record: ReplayRecord;
  readonly result: RunResult;
}

/**
 * Reruns the schedule a token records, exactly: same world seed, same decisions, same mutants.
 * A run that does not follow the recording throws a ReplayDivergence. `costs`: the recorded
 * run's cost overrides (the CLI keeps them in the token's world), for the same virtual times.
 */
export function replay(
  build: WorldBuilder,
  token: string,
  options: { onKernel?: (kernel: Kernel) => void; costs?: CostOverrides } = {},
): ReplayResult {
  const record = decodeToken(token);
  const settings: RunSettings = {
    maxSteps: record.maxSteps,
    onStepLimit: 'fail',
    mutants: record.mutants,
    onKernel: options.onKernel,
    ...(options.costs === undefined ? {} : { costs: options.costs }),
  };
  const result = runWorld(build, new ReplayStrategy(record.decisions, true), record.seed, settings);
  return { record, result };
}
