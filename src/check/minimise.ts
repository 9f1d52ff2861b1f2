import type { RunResult } from '../kernel/kernel.ts';
import { PctStrategy } from '../kernel/strategies/pct.ts';
import { RandomStrategy } from '../kernel/strategies/random.ts';
import { runSeed } from './run-seed.ts';
import { type RunSettings, replayLenient, runWorld, type WorldBuilder } from './run-world.ts';

/** A failing schedule before or after minimisation. */
export interface Schedule {
  readonly decisions: readonly number[];
  readonly result: RunResult;
}

/**
 * Steps a candidate replay may take, as a multiple of the failing run's (at least the minimum):
 * a much longer run is no simpler counterexample, and a world whose other schedules spin (a
 * loop waiting on virtual time under the default strategy) would otherwise cost the whole step
 * limit per replay, minutes under `odpsim run`'s.
 */
const CANDIDATE_STEPS_FACTOR = 4;
const CANDIDATE_STEPS_MIN = 10_000;

/** Fresh PCT schedules a minimisation tries, when the failing one preempts more than PCT_ABOVE. */
const PCT_RESTARTS = 60;
const PCT_ABOVE = 8;
/** Salt of their seeds (apart from the exploration's own). */
const PCT_SALT = 0x70637472;

/** True when `a` is a simpler counterexample than `b`: fewer preemptions, then fewer steps. */
function simpler(a: RunResult, b: RunResult): boolean {
  return a.preemptions < b.preemptions || (a.preemptions === b.preemptions && a.steps < b.steps);
}

/**
 * Shrinks a failing schedule: tries shorter decision prefixes (the rest runs without
 * preemption) and drops preemptions, in chunks then singly, keeping a candidate only when its replay fails with
 * the same rule and is simpler. Every kept schedule is a real run, so its decisions replay
 * exactly. `budget` caps the replays.
 */
export function minimise(
  build: WorldBuilder,
  failing: Schedule,
  seed: number,
  s: RunSettings,
  budget = 400,
): Schedule {
  const rule = failing.result.bug?.rule;
  // A step-limit failure keeps the caller's limit: a lower one would make every replay "fail".
  const cap = Math.max(CANDIDATE_STEPS_MIN, CANDIDATE_STEPS_FACTOR * failing.result.steps);
  const settings: RunSettings =
    rule === 'step-limit' ? s : { ...s, maxSteps: Math.min(s.maxSteps, cap) };
  let best = failing;
  let spent = 0;
  const attempt = (decisions: readonly number[]): boolean => {
    if (spent >= budget) return false;
    spent++;
    const { result } = replayLenient(build, decisions, seed, settings);
    if (result.bug?.rule !== rule || !simpler(result, best.result)) return false;
    best = { decisions: result.decisions, result };
    return true;
  };

  // A schedule of many preemptions (a random one switches at most steps) is first raced by
  // fresh PCT schedules of depth 1 to 3: one that fails the same way is far simpler than what
  // dropping preemptions one chunk at a time reaches, since each dropped one reshapes the rest.
  for (let j = 0; j < PCT_RESTARTS && best.result.preemptions > PCT_ABOVE && spent < budget; j++) {
    spent++;
    const pct = new PctStrategy(runSeed(seed ^ PCT_SALT, j), 1 + (j % 3), best.result.steps);
    const result = runWorld(build, pct, seed, settings);
    if (result.bug?.rule === rule && simpler(result, best.result))
      best = { decisions: result.decisions, result };
  }

  // Shortest failing prefix by bisection (a heuristic: failure need not be monotone).
  let lo = 0;
  let hi = best.decisions.length;
  while (lo < hi && spent < budget) {
    const mid = (lo + hi) >> 1;
    if (attempt(best.decisions.slice(0, mid))) hi = Math.min(mid, best.decisions.length);
    else lo = mid + 1;
  }

  // Then turn preemptions into non-preemptive choices: in chunks first, halves down to single
  // ones (delta debugging: a random schedule keeps hundreds, one at a time would exhaust the
  // budget), the latest first; a single one may also end the prefix there.
  for (let chunks = 2; spent < budget; ) {
    const { preempting } = replayLenient(build, best.decisions, seed, settings);
    spent++;
    const at = preemptionSteps(preempting);
    if (at.length === 0) break;
    chunks = Math.min(chunks, at.length);
    const size = Math.ceil(at.length / chunks);
    let removed = false;
    for (let c = Math.ceil(at.length / size) - 1; c >= 0 && !removed && spent < budget; c--) {
      const part = at.slice(c * size, (c + 1) * size);
      const candidate = best.decisions.slice();
      for (const i of part) candidate[i] = -1;
      removed = attempt(candidate) || (size === 1 && attempt(best.decisions.slice(0, part[0])));
    }
    if (removed) continue;
    if (size === 1) break;
    chunks *= 2;
  }
  return best;
}

/** The steps whose decision preempted the running task. */
function preemptionSteps(preempting: readonly boolean[]): number[] {
  const at: number[] = [];
  for (let i = 0; i < preempting.length; i++) if (preempting[i]) at.push(i);
  return at;
}

/**
 * Fresh random schedules a world candidate gets when the current decisions no longer fail in
 * it (they were made for a larger world): with fewer operations the failure is often easier
 * to hit, and the decisions of a schedule that hits it replay exactly.
 */
const FRESH_SCHEDULES = 3;

/** Salt of the fresh schedules' seeds (apart from the exploration's own). */
const FRESH_SALT = 0x6d696e69;

/**
 * The first of: the lenient replay of `decisions`, then fresh random schedules, that fails with
 * `rule` in the world `build` (or the last tried), and how many runs it took.
 */
function failingRun(
  build: WorldBuilder,
  decisions: readonly number[],
  seed: number,
  s: RunSettings,
  rule: string,
): RunResult & { tries: number } {
  let result = replayLenient(build, decisions, seed, s).result;
  let tries = 1;
  for (let j = 0; j < FRESH_SCHEDULES && result.bug?.rule !== rule; j++, tries++)
    result = runWorld(build, new RandomStrategy(runSeed(seed ^ FRESH_SALT, j)), seed, s);
  return { ...result, tries };
}

/** A failure in a world with fewer operations: its builder, its description and its schedule. */
export interface ReducedWorld {
  readonly build: WorldBuilder;
  /** The description for replay tokens; null when the world was not reduced. */
  readonly world: string | null;
  /** Operations of the world, and how many the failure still needs. */
  readonly operations: number;
  readonly kept: number;
  readonly schedule: Schedule;
}

/**
 * Leaves out the operations of a generated world that its failure does not need (delta
 * debugging, Zeller and Hildebrandt, TSE 2002: drop halves, then quarters, down to single
 * operations). Each candidate first replays the current decisions leniently, so the threads
 * that remain keep their interleaving as far as it still applies, then tries a few fresh
 * random schedules; it is kept when one fails with the same rule. `budget` caps the runs.
 */
export function reduceWorld(
  build: WorldBuilder,
  failing: Schedule,
  seed: number,
  s: RunSettings,
  budget = 300,
): ReducedWorld {
  const r = build.reducible;
  const rule = failing.result.bug?.rule;
  if (r === undefined || rule === undefined)
    return { build, world: null, operations: 0, kept: 0, schedule: failing };
  const operations = r.operations(seed);
  const omitted = new Set(r.omitted);
  let live = Array.from({ length: operations }, (_, i) => i).filter((i) => !omitted.has(i));
  const cap = Math.max(CANDIDATE_STEPS_MIN, CANDIDATE_STEPS_FACTOR * failing.result.steps);
  const settings: RunSettings =
    rule === 'step-limit' ? s : { ...s, maxSteps: Math.min(s.maxSteps, cap) };
  let best: ReducedWorld = { build, world: null, operations, kept: live.length, schedule: failing };
  let spent = 0;
  for (let chunk = Math.ceil(live.length / 2); chunk >= 1 && spent < budget; ) {
    let removed = false;
    for (let i = 0; i < live.length && spent < budget; ) {
      const candidate = [...live.slice(0, i), ...live.slice(i + chunk)];
      const keep = new Set(candidate);
      const variant = r.without(
        Array.from({ length: operations }, (_, id) => id).filter((id) => !keep.has(id)),
      );
      const result = failingRun(variant.build, best.schedule.decisions, seed, settings, rule);
      spent += result.tries;
      if (result.bug?.rule === rule) {
        live = candidate;
        best = {
          build: variant.build,
          world: variant.world,
          operations,
          kept: live.length,
          schedule: { decisions: result.decisions, result },
        };
        removed = true;
      } else i += chunk;
    }
    if (!removed) chunk = chunk === 1 ? 0 : Math.ceil(chunk / 2);
  }
  return best;
}
