import type { Kernel } from '../kernel/kernel.ts';

/** One numeric parameter of a scenario (`--set name=value`). */
export interface ScenarioParam {
  readonly name: string;
  readonly description: string;
  readonly default: number;
  readonly min: number;
  readonly max: number;
}

/** A kernel finding a scenario reproduces at its defaults (see {@link Scenario.finding}). */
export interface ScenarioFinding {
  readonly rule: string;
  readonly doc: string;
  readonly clean: Readonly<Record<string, number>>;
}

/** Parameter values by name, after defaults and validation. */
export type ScenarioParams = Readonly<Record<string, number>>;

/**
 * The value of parameter `name` (resolveParams() fills every declared one, so a missing one is
 * a scenario bug, named with its scenario).
 */
export function paramOf(scenario: string, p: ScenarioParams, name: string): number {
  const v = p[name];
  if (v === undefined) throw new Error(`${scenario}: missing parameter ${name}`);
  return v;
}

/**
 * A built-in workload: a function that builds a world on a fresh kernel from parameters.
 * The world installs its oracles, spawns its tasks, and registers its end-to-end data checks
 * with kernel.onQuiescence. Statistics come from the trace, so a scenario only has to emit
 * the standard events. Oracles installed with installOracles() show in run reports by
 * themselves; a scenario shows its own data checks there by registering them with
 * registerOracle() (check/oracles/registry.ts), naming the KernelBug rule they raise.
 */
export interface Scenario {
  /** Kebab-case name used on the command line. */
  readonly name: string;
  /** One line for `odpsim list`. */
  readonly description: string;
  readonly params: readonly ScenarioParam[];
  /**
   * Set when the world at its defaults reproduces a kernel bug documented in docs/findings/:
   * the rule its run breaks, the document, and the parameters that make it clean (the fix).
   */
  readonly finding?: ScenarioFinding;
  /**
   * Checks combinations of parameters their ranges cannot express; throws an EINVAL naming
   * them. Called once the values are resolved, before any world is built.
   */
  check?(params: ScenarioParams): void;
  /**
   * Set when the world is generated from the run's seed: how many operations the world of
   * `seed` has (ids 0 to n − 1), which {@link build} can leave out (minimisation shrinks a
   * failing world by leaving out the operations its failure does not need).
   */
  operations?(params: ScenarioParams, seed: number): number;
  /**
   * A generated world's shape for reports, a line per part: what the world of `seed` has
   * without the operations in `omit`.
   */
  describe?(params: ScenarioParams, seed: number, omit: ReadonlySet<number>): string[];
  /**
   * Builds the world on `kernel` (called once per run); `omit`: ids of operations to leave out
   * (a generated world only, see {@link operations}).
   */
  build(kernel: Kernel, params: ScenarioParams, omit?: ReadonlySet<number>): void;
}
