import type { StepLimitPolicy } from '../kernel/kernel.ts';
import { Errno } from '../lib/errors.ts';
import type { ExploreOptions } from './explore.ts';
import { checkMutants } from './mutants.ts';

/** Explore options with defaults filled in and every value checked. */
export interface CheckedExploreOptions {
  readonly strategy: ExploreOptions['strategy'];
  readonly runs: number;
  readonly seed: number;
  readonly startRun: number;
  readonly maxSteps: number;
  readonly onStepLimit: StepLimitPolicy;
  readonly depth: number;
  readonly preemptions: number;
  readonly timeBudgetMs: number | undefined;
  readonly mutants: readonly string[];
  readonly minimise: boolean;
  readonly world: string;
}

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new Errno(
      'EINVAL',
      `explore: ${what} must be an integer in [${min}, ${max}], got ${String(v)}`,
    );
  }
  return v;
}

/** Validates {@link ExploreOptions}; a bad value is an EINVAL naming the option. */
export function checkExploreOptions(o: ExploreOptions): CheckedExploreOptions {
  if (!['random', 'pct', 'dfs', 'timed'].includes(o.strategy)) {
    throw new Errno(
      'EINVAL',
      `explore: strategy must be random, pct, dfs or timed, got ${String(o.strategy)}`,
    );
  }
  const policy = o.onStepLimit ?? 'fail';
  if (policy !== 'fail' && policy !== 'pass')
    throw new Errno(
      'EINVAL',
      `explore: onStepLimit must be 'fail' or 'pass', got ${String(policy)}`,
    );
  if (o.timeBudgetMs !== undefined && !(o.timeBudgetMs >= 0)) {
    throw new Errno(
      'EINVAL',
      `explore: timeBudgetMs must be a non-negative number, got ${String(o.timeBudgetMs)}`,
    );
  }
  return {
    strategy: o.strategy,
    runs: int(o.runs ?? 1000, 'runs', 1, Number.MAX_SAFE_INTEGER),
    seed: int(o.seed ?? 1, 'seed', 0, 0xffffffff),
    startRun: int(o.startRun ?? 0, 'startRun', 0, Number.MAX_SAFE_INTEGER),
    maxSteps: int(o.maxSteps ?? 100_000, 'maxSteps', 1, Number.MAX_SAFE_INTEGER),
    onStepLimit: policy,
    depth: int(o.depth ?? 3, 'depth', 1, 64),
    preemptions: int(o.preemptions ?? 2, 'preemptions', 0, 3),
    timeBudgetMs: o.timeBudgetMs,
    mutants: checkMutants(o.mutants ?? []),
    minimise: o.minimise ?? true,
    world: o.world ?? '',
  };
}
