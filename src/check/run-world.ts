import type { CostOverrides } from '../cost/model.ts';
import { Kernel, type RunResult, type StepLimitPolicy } from '../kernel/kernel.ts';
import { ReplayStrategy } from '../kernel/strategies/replay.ts';
import type { Strategy } from '../kernel/strategy.ts';
import type { Task } from '../kernel/task.ts';

/**
 * Builds a world on a fresh kernel: creates its state (a Machine, its address spaces, drivers
 * and oracles) and spawns its tasks. It must build the same world every time: exploration and
 * replay call it once per run. A module given to `odpsim replay --world` exports one as its
 * `default` (or as `world`). A generated world may carry {@link ReducibleWorld}, so that
 * minimisation can leave out the operations a failure does not need.
 */
export interface WorldBuilder {
  (kernel: Kernel): void;
  readonly reducible?: ReducibleWorld;
}

/**
 * A world made of numbered operations that can each be left out (a generated scenario's
 * steps): what lets minimisation shrink the world, not only the schedule.
 */
export interface ReducibleWorld {
  /** How many operations the world run with `seed` has (ids 0 to n − 1). */
  operations(seed: number): number;
  /** The operations this builder already leaves out. */
  readonly omitted: readonly number[];
  /** The same world without the operations `omit`, and its description for replay tokens. */
  without(omit: readonly number[]): { readonly build: WorldBuilder; readonly world: string };
}

/** What every run of one exploration shares. */
export interface RunSettings {
  readonly maxSteps: number;
  readonly onStepLimit: StepLimitPolicy;
  readonly mutants: readonly string[];
  /** Called with each fresh kernel before the world is built (to attach trace subscribers). */
  readonly onKernel?: ((kernel: Kernel) => void) | undefined;
  /** Cost table overrides (cost/table.ts). */
  readonly costs?: CostOverrides;
}

/** Builds the world on a fresh kernel and runs it. */
export function runWorld(
  build: WorldBuilder,
  strategy: Strategy,
  seed: number,
  s: RunSettings,
): RunResult {
  const k = new Kernel({
    strategy,
    seed,
    maxSteps: s.maxSteps,
    onStepLimit: s.onStepLimit,
    mutants: s.mutants,
    ...(s.costs === undefined ? {} : { costs: s.costs }),
  });
  s.onKernel?.(k);
  build(k);
  return k.run();
}

/** A run with, for each decision, whether it preempted a task that could have gone on. */
export interface AnnotatedRun {
  readonly result: RunResult;
  readonly preempting: readonly boolean[];
}

/**
 * Replays `decisions` leniently (-1 or a non-runnable id means the non-preemptive choice) and
 * notes which decisions preempted. The minimiser's one primitive.
 */
export function replayLenient(
  build: WorldBuilder,
  decisions: readonly number[],
  seed: number,
  s: RunSettings,
): AnnotatedRun {
  const inner = new ReplayStrategy(decisions, false);
  const preempting: boolean[] = [];
  const strategy: Strategy = {
    kind: 'replay',
    timed: false,
    begin: () => inner.begin(),
    onSpawn: () => {},
    end: () => {},
    pick(runnable: readonly Task[], prev: Task | null): Task {
      const t = inner.pick(runnable, prev);
      preempting.push(prev !== null && t !== prev && runnable.includes(prev));
      return t;
    },
  };
  return { result: runWorld(build, strategy, seed, s), preempting };
}
