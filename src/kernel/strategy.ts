import type { Task } from './task.ts';

/** The strategy kinds a replay token can name. */
export type StrategyKind = 'random' | 'pct' | 'dfs' | 'replay' | 'timed';

/**
 * Chooses which runnable task runs next. The scheduler asks only when at least two tasks are
 * runnable, and records the chosen task's id as one decision.
 */
export interface Strategy {
  readonly kind: StrategyKind;
  /** True for the discrete-event `timed` strategy (timers fire in virtual-time order). */
  readonly timed: boolean;
  /** A run starts (fresh kernel). */
  begin(): void;
  /** A task was spawned. */
  onSpawn(task: Task): void;
  /**
   * Picks the next task among `runnable` (length ≥ 2, spawn order within wake order).
   * `prev` ran the previous step and may no longer be runnable; `step` counts steps so far.
   */
  pick(runnable: readonly Task[], prev: Task | null, step: number): Task;
  /** The run ended; a replay checks it used every recorded decision. */
  end(): void;
}

/** The choice that preempts nobody: the previous task if it can go on, else the first runnable. */
export function defaultChoice(runnable: readonly Task[], prev: Task | null): Task {
  if (prev !== null && runnable.includes(prev)) return prev;
  return runnable[0]!;
}
