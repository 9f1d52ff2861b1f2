// `odpsim replay <token>`: reruns a recorded schedule exactly, shows its timeline, and writes
// the trace as Chrome trace JSON (Perfetto) or a text log.
import { writeFileSync } from 'node:fs';
import { countersOf } from '../check/counters.ts';
import { replay } from '../check/explore.ts';
import { checkMutants } from '../check/mutants.ts';
import { decodeToken, type ReplayRecord } from '../check/replay-token.ts';
import { ReplayDivergence } from '../kernel/strategies/replay.ts';
import type { Io } from './io.ts';
import type { ReplayJson } from './json.ts';
import { observeFirstRun } from './observe.ts';
import { EXIT, UsageError } from './options.ts';
import { formatCounters, formatMs, formatStats, formatVerdicts } from './report.ts';
import { asUsage, describeSetup, type Setup, worldJson } from './setup.ts';
import { oracleVerdicts } from './stats.ts';
import { buildTimeline, renderTimeline } from './timeline.ts';
import { decodeWorld, worldBuilder } from './world.ts';

/** Options of `odpsim replay`. */
export interface ReplayCommandOptions {
  /** Write the Chrome trace JSON here. */
  readonly trace?: string;
  /** Write the text log here. */
  readonly log?: string;
  readonly json: boolean;
}

/** Replays a token; returns the exit status (1 when the failure reproduces). */
export function replayCommand(io: Io, token: string, opts: ReplayCommandOptions): number {
  const { record, s } = asUsage(() => {
    const record: ReplayRecord = decodeToken(token);
    const s: Setup = { spec: decodeWorld(record.world), mutants: checkMutants(record.mutants) };
    return { record, s };
  });
  const watch = observeFirstRun(true);
  const t0 = io.now();
  let result: ReturnType<typeof replay>['result'];
  try {
    result = replay(worldBuilder(s.spec), token, { onKernel: watch.onKernel }).result;
  } catch (e) {
    if (e instanceof ReplayDivergence)
      throw new UsageError(`the token does not replay on odpsim's current model: ${e.message}`);
    throw e;
  }
  const elapsedMs = io.now() - t0;
  const o = watch.observed()!;
  const rec = o.recorder!;
  const bug = result.bug;
  const files = { trace: opts.trace ?? null, log: opts.log ?? null };
  if (files.trace !== null) writeFileSync(files.trace, rec.toChromeTrace());
  if (files.log !== null) writeFileSync(files.log, `${rec.toText()}\n`);
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
    timeline: buildTimeline(rec),
    files,
    elapsedMs,
  };
  if (opts.json) io.out(JSON.stringify(report, null, 2));
  else {
    const lines = [
      `odpsim replay: a schedule found by ${record.strategy} (run seed ${record.seed})`,
      ...describeSetup(s),
      '',
      'Timeline (step, task, event):',
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
    if (files.trace !== null)
      lines.push(`wrote ${files.trace} (Chrome trace JSON: open it in https://ui.perfetto.dev)`);
    if (files.log !== null) lines.push(`wrote ${files.log} (text log, one event per line)`);
    lines.push(`elapsed ${formatMs(elapsedMs)}`);
    io.out(lines.join('\n'));
  }
  return bug === null ? EXIT.ok : EXIT.bug;
}
