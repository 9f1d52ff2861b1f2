// One run before an exploration: the world without preemption, recording the mutant sites it
// reaches and its length. The length sizes the step budget and pct's estimate; the sites tell a
// mutant the world never reaches (which would explore the correct code and call it clean).

import { runSeed } from '../check/explore.ts';
import type { WorldBuilder } from '../check/run-world.ts';
import { Kernel } from '../kernel/kernel.ts';
import { RandomStrategy } from '../kernel/strategies/random.ts';
import { ReplayStrategy } from '../kernel/strategies/replay.ts';
import type { Strategy } from '../kernel/strategy.ts';
import type { Scenario } from '../scenarios/scenario.ts';
import { worldBuilder, worldSpec } from './world.ts';

/** What the probe run saw. */
export interface Probe {
  readonly steps: number;
  /** True when the probe stopped at its own limit (its length is then unknown). */
  readonly stoppedAtLimit: boolean;
  readonly sites: ReadonlySet<string>;
}

/** The probe's own limit when the user set none: a world that spins stops here. */
export const PROBE_MAX_STEPS = 5_000_000;

/** The default step budget of one explored run when no --max-steps is given. */
export const MIN_RUN_STEPS = 100_000;

/**
 * A schedule with preemptions runs longer than the one without (retries, waits); this factor
 * over the probe's length is the budget, so a world's size sets its limit.
 */
export const RUN_STEPS_FACTOR = 10;

/**
 * Random schedules the probe adds when a requested mutant's site was not reached without
 * preemption: some sites run only when tasks interleave (an insertion during an invalidation).
 */
export const PROBE_RANDOM_RUNS = 8;

function probeRun(
  build: WorldBuilder,
  strategy: Strategy,
  mutants: readonly string[],
  seed: number,
  maxSteps: number,
): { steps: number; stoppedAtLimit: boolean; sites: ReadonlySet<string> } {
  const k = new Kernel({
    strategy,
    seed,
    maxSteps,
    onStepLimit: 'pass',
    mutants,
    recordMutantSites: true,
  });
  build(k);
  const r = k.run();
  return { steps: r.steps, stoppedAtLimit: r.stoppedAtLimit, sites: k.mutantSites ?? new Set() };
}

/**
 * Runs the world without preemption, recording the mutant sites it reaches; while a mutant
 * enabled is unreached, adds up to `randomRuns` random schedules (seeded from `seed`). With
 * `everySchedule` all of them run whatever was reached (to map the sites, not to check some).
 */
export function probeWorld(
  build: WorldBuilder,
  mutants: readonly string[],
  seed: number,
  maxSteps: number,
  randomRuns = PROBE_RANDOM_RUNS,
  everySchedule = false,
): Probe {
  const first = probeRun(build, new ReplayStrategy([], false), mutants, seed, maxSteps);
  const sites = new Set(first.sites);
  const missing = () => everySchedule || mutants.some((m) => !sites.has(m));
  for (let i = 0; i < randomRuns && missing(); i++) {
    const s = runSeed(seed ^ PROBE_SEED, i);
    for (const m of probeRun(build, new RandomStrategy(s), mutants, s, maxSteps).sites)
      sites.add(m);
  }
  return { steps: first.steps, stoppedAtLimit: first.stoppedAtLimit, sites };
}

/**
 * Random runs for a generated scenario: each draws another world, and a mutant's site may be
 * in few of them (a client or an operation that swarm testing leaves out half the time).
 */
export const GENERATED_PROBE_RUNS = 64;

/** Keeps the probe's random schedules apart from the exploration's own. */
const PROBE_SEED = 0x70726f62;

/** The step budget of each explored run derived from the probe. */
export function stepBudget(p: Probe): number {
  if (p.stoppedAtLimit) return MIN_RUN_STEPS;
  return Math.max(MIN_RUN_STEPS, RUN_STEPS_FACTOR * p.steps);
}

/** Random schedules per variant for the table (fewer than a refusal's: the table is a guide). */
const TABLE_RANDOM_RUNS = 2;

/** Parameters with at most this many values are probed at each (flags, designs, modes). */
const SMALL_RANGE = 8;

/**
 * Which scenarios reach each mutant: each scenario probed at its defaults, at the settings of
 * each mutant's documented reach, and at every value of each small-ranged parameter. A
 * mutant reached only under a setting is listed with the first such setting.
 */
export function probeScenarios(
  scenarios: readonly Scenario[],
  reaches: readonly { scenario: string; set: Readonly<Record<string, number>> }[],
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const sc of scenarios) {
    const reachSets = reaches.filter((r) => r.scenario === sc.name).map((r) => ({ ...r.set }));
    const variants: Record<string, number>[] = [{}, ...reachSets];
    // A generated scenario varies per seed, not per parameter: its defaults, many seeds.
    const generated = sc.operations !== undefined;
    const runs = generated ? GENERATED_PROBE_RUNS : TABLE_RANDOM_RUNS;
    for (const p of generated ? [] : sc.params)
      if (p.max - p.min <= SMALL_RANGE)
        for (let v = p.min; v <= p.max; v++) if (v !== p.default) variants.push({ [p.name]: v });
    const seen = new Map<string, string>();
    for (const wanted of variants) {
      // A value the scenario refuses alone (sw=1 needs design=2020) is tried with each reach's
      // settings in turn.
      const resolved = [wanted, ...reachSets.map((r) => ({ ...r, ...wanted }))]
        .map((set) => ({ set, spec: specOrNull(sc.name, set) }))
        .find((v) => v.spec !== null);
      if (resolved === undefined) continue;
      const { set, spec } = resolved;
      const label = [sc.name, ...Object.entries(set).map(([k, v]) => `--set ${k}=${v}`)].join(' ');
      const p = probeWorld(worldBuilder(spec!), [], 1, PROBE_MAX_STEPS, runs, true);
      for (const m of p.sites) if (!seen.has(m)) seen.set(m, label);
    }
    for (const [m, label] of seen) {
      out[m] ??= [];
      out[m].push(label);
    }
  }
  for (const list of Object.values(out)) list.sort();
  return out;
}

function specOrNull(
  name: string,
  set: Record<string, number>,
): ReturnType<typeof worldSpec> | null {
  try {
    return worldSpec(name, set);
  } catch {
    return null; // a combination the scenario refuses
  }
}
