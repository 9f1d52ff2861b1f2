// `odpsim replay <token>`: reruns a recorded schedule exactly, shows its timeline, and writes
// the trace as Chrome trace JSON (Perfetto) or a text log.
import { countersOf } from '../check/counters.ts';
import { replay } from '../check/explore.ts';
import { checkMutants } from '../check/mutants.ts';
import { decodeToken, type ReplayRecord } from '../check/replay-token.ts';
import type { WorldBuilder } from '../check/run-world.ts';
import { ReplayDivergence } from '../kernel/strategies/replay.ts';
import type { Io } from './io.ts';
import type { ReplayJson } from './json.ts';
import { observeFirstRun } from './observe.ts';
import { EXIT, UsageError } from './options.ts';
import {
  checkOutputs,
  type RecordingPaths,
  reportWrites,
  writtenFiles,
  wroteLines,
} from './outputs.ts';
import { formatCounters, formatMs, formatStats, formatVerdicts } from './report.ts';
import { asUsage, describeSetup, type Setup, worldJson } from './setup.ts';
import { oracleVerdicts } from './stats.ts';
import { buildTimeline, renderTimeline, type TimelineMode } from './timeline.ts';
import { writeRecording } from './web-view.ts';
import { decodeWorld, describeTokenWorld, worldBuilder } from './world.ts';
import { loadWorld } from './world-ref.ts';

/** Options of `odpsim replay`. */
export interface ReplayCommandOptions extends RecordingPaths {
  /** Replay on the world a user's module exports instead of the token's scenario. */
  readonly world?: string;
  readonly timeline: TimelineMode;
  readonly json: boolean;
}

/** The token's world: its scenario, or the module given with --world. */
async function worldOf(
  record: ReplayRecord,
  module: string | undefined,
): Promise<{ s: Setup; build: WorldBuilder }> {
  const mutants = asUsage(() => checkMutants(record.mutants));
  if (module === undefined) {
    const spec = asUsage(() => decodeWorld(record.world));
    return { s: { spec, mutants }, build: worldBuilder(spec) };
  }
  const build = await loadWorld({ kind: 'module', path: module });
  const spec = {
    scenario: { name: module, description: 'a world from your module', params: [], build },
    params: {},
  };
  return { s: { spec, mutants }, build };
}

/** Replays a token; resolves to the exit status (1 when the failure reproduces). */
export async function replayCommand(
  io: Io,
  token: string,
  opts: ReplayCommandOptions,
): Promise<number> {
  const record = asUsage(() => decodeToken(token));
  const { s, build } = await worldOf(record, opts.world);
  checkOutputs({ trace: opts.trace, log: opts.log, html: opts.html });
  const watch = observeFirstRun(true);
  const t0 = io.now();
  let result: ReturnType<typeof replay>['result'];
  try {
    const costs = s.spec.costs;
    result = replay(build, token, {
      onKernel: watch.onKernel,
      ...(costs === undefined ? {} : { costs }),
    }).result;
  } catch (e) {
    if (e instanceof ReplayDivergence)
      throw new UsageError(`the token does not replay on odpsim's current model: ${e.message}`);
    throw e;
  }
  const elapsedMs = io.now() - t0;
  const o = watch.observed()!;
  const rec = o.recorder!;
  const bug = result.bug;
  const w = writeRecording(
    rec,
    opts,
    s,
    `replay of a schedule found by ${record.strategy} (run seed ${record.seed})`,
    token.trim(),
  );
  const files = writtenFiles(w, opts);
  const report: ReplayJson = {
    command: 'replay',
    ...worldJson(s),
    token: token.trim(),
    strategy: record.strategy,
    seed: record.seed,
    ok: bug === null,
    stats: o.stats.snapshot(),
    oracles: oracleVerdicts(o.kernel, bug),
    counters: countersOf(o.kernel),
    failure: bug === null ? null : { rule: bug.rule, task: bug.task, message: bug.message },
    timeline: buildTimeline(rec, opts.timeline),
    files,
    elapsedMs,
  };
  if (opts.json) io.out(JSON.stringify(report, null, 2));
  else {
    const lines = [
      `odpsim replay: a schedule found by ${record.strategy} (run seed ${record.seed})`,
      ...describeSetup(s),
      ...worldLines(s, record.seed),
      '',
      `Timeline (step, task, event; ${opts.timeline === 'full' ? 'every event' : 'protocol events, --timeline full adds locks'}):`,
      ...renderTimeline(report.timeline),
      '',
      ...formatStats(report.stats),
      '',
      ...formatCounters(report.counters),
      ...formatVerdicts(report.oracles),
      '',
      bug === null
        ? 'Result: ran clean; the token does not reproduce a failure'
        : `Result: reproduced ${bug.message}`,
    ];
    lines.push(...wroteLines(files));
    lines.push(`elapsed ${formatMs(elapsedMs)}`);
    io.out(lines.join('\n'));
  }
  return reportWrites(io, w, bug === null ? EXIT.ok : EXIT.bug);
}

/** A generated scenario's world, as the token names it (none for a fixed one). */
function worldLines(s: Setup, seed: number): string[] {
  const lines = describeTokenWorld(s.spec, seed);
  return lines.length === 0
    ? []
    : ['  world     generated from the run seed:', ...lines.map((l) => `    ${l}`)];
}
