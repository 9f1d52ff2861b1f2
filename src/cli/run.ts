// `odpsim run [scenario]`: one run under the timed strategy, with statistics and verdicts.
import { countersOf } from '../check/counters.ts';
import { explore } from '../check/explore.ts';
import { observations } from '../check/observations.ts';
import type { Io } from './io.ts';
import type { RunJson } from './json.ts';
import { observeFirstRun } from './observe.ts';
import { EXIT } from './options.ts';
import { formatCounters, formatMs, formatStats, formatVerdicts } from './report.ts';
import { describeSetup, setup, worldJson } from './setup.ts';
import { oracleVerdicts } from './stats.ts';
import { encodeWorld, worldBuilder } from './world.ts';

/** Options of `odpsim run`. */
export interface RunCommandOptions {
  readonly set: Record<string, number>;
  readonly mutant: string[];
  readonly seed: number;
  readonly maxSteps: number;
  readonly json: boolean;
}

/** Runs the scenario once in virtual-time order; returns the exit status. */
export function runCommand(io: Io, name: string, opts: RunCommandOptions): number {
  const s = setup(name, opts.set, opts.mutant);
  const watch = observeFirstRun(false);
  const t0 = io.now();
  const r = explore(worldBuilder(s.spec), {
    strategy: 'timed',
    runs: 1,
    seed: opts.seed,
    maxSteps: opts.maxSteps,
    mutants: s.mutants,
    world: encodeWorld(s.spec),
    onKernel: watch.onKernel,
    clock: io.now,
  });
  const elapsedMs = io.now() - t0;
  const o = watch.observed()!;
  const f = r.failure;
  const bug = f?.bug ?? null;
  const report: RunJson = {
    command: 'run',
    ...worldJson(s),
    strategy: 'timed',
    seed: opts.seed,
    ok: f === null,
    stats: o.stats.snapshot(),
    oracles: oracleVerdicts(o.kernel, bug),
    observations: [...observations(o.kernel)],
    counters: countersOf(o.kernel),
    failure:
      f === null ? null : { rule: f.rule, task: f.task, message: f.bug.message, token: f.token },
    elapsedMs,
  };
  if (opts.json) io.out(JSON.stringify(report, null, 2));
  else {
    const lines = [
      `odpsim run: one run in virtual-time order (strategy timed, seed ${opts.seed})`,
      ...describeSetup(s),
      '',
      ...formatStats(report.stats),
      '',
      ...formatCounters(report.counters),
      ...(report.observations.length > 0
        ? ['Observations', ...report.observations.map((l) => `  ${l}`), '']
        : []),
      ...formatVerdicts(report.oracles),
      '',
    ];
    if (f === null) lines.push('Result: ok, every check passed');
    else
      lines.push(
        `Result: ${f.bug.message}`,
        '',
        `Replay token: ${f.token}`,
        `  odpsim replay ${f.token}   (timeline; add --trace out.json for Perfetto)`,
      );
    lines.push(`elapsed ${formatMs(elapsedMs)}`);
    io.out(lines.join('\n'));
  }
  return f === null ? EXIT.ok : EXIT.bug;
}
