// `odpsim run [scenario]`: one run under the timed strategy, with statistics and verdicts.

import { countersOf } from '../check/counters.ts';
import { explore } from '../check/explore.ts';
import { observations } from '../check/observations.ts';
import { COST_NAMES } from '../cost/table.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { costOverrides } from './cost-options.ts';
import type { Io } from './io.ts';
import type { RunJson } from './json.ts';
import { observeFirstRun } from './observe.ts';
import { EXIT } from './options.ts';
import {
  checkOutputs,
  type RecordingPaths,
  reportWrites,
  writtenFiles,
  wroteLines,
} from './outputs.ts';
import { runStatus } from './progress.ts';
import {
  formatCounters,
  formatMs,
  formatNs,
  formatStats,
  formatVerdicts,
  num,
  plural,
} from './report.ts';
import { describeSetup, setup, worldJson } from './setup.ts';
import { oracleVerdicts } from './stats.ts';
import { writeRecording } from './web-view.ts';
import { encodeWorld, worldBuilder } from './world.ts';

/** Options of `odpsim run`. */
export interface RunCommandOptions extends RecordingPaths {
  readonly set: Record<string, number>;
  readonly mutant: string[];
  readonly seed: number;
  readonly maxSteps: number;
  readonly json: boolean;
  /** `--cost NAME=VALUE` assignments, in order. */
  readonly cost?: readonly string[];
  /** `--costs FILE`: a JSON object of assignments, applied before the `--cost` ones. */
  readonly costs?: string | undefined;
}

/** What the run's cost model charged, in table order. */
function costTally(k: Kernel): RunJson['costs'] {
  const out: Record<string, { count: number; ns: number }> = {};
  for (const name of COST_NAMES) {
    const t = k.costs.tally.get(name);
    if (t !== undefined) out[name] = { count: t.count, ns: t.ns };
  }
  return out;
}

/** The costs charged, largest first: where the run's virtual time went. */
function formatCosts(costs: RunJson['costs']): string[] {
  const rows = Object.entries(costs).sort((a, b) => b[1].ns - a[1].ns);
  if (rows.length === 0) return [];
  return [
    'Virtual time charged (odpsim costs)',
    ...rows.map(
      ([name, t]) => `  ${name.padEnd(16)} ${plural(t.count, 'time')}, ${formatNs(t.ns)}`,
    ),
    '',
  ];
}

/** Runs the scenario once in virtual-time order; returns the exit status. */
export function runCommand(io: Io, name: string, opts: RunCommandOptions): number {
  const s = setup(name, opts.set, opts.mutant);
  const costs = costOverrides(opts.costs, opts.cost ?? []);
  checkOutputs({ trace: opts.trace, log: opts.log, html: opts.html });
  // Recording costs memory per event: only when a file asks for it.
  const watch = observeFirstRun(
    opts.trace !== undefined || opts.log !== undefined || opts.html !== undefined,
  );
  const status = runStatus(io, `running ${s.spec.scenario.name}`);
  const t0 = io.now();
  let r: ReturnType<typeof explore>;
  try {
    r = explore(worldBuilder(s.spec), {
      strategy: 'timed',
      runs: 1,
      seed: opts.seed,
      maxSteps: opts.maxSteps,
      // Cut short is reported as such, not as a bug (the world may only need more steps).
      onStepLimit: 'pass',
      mutants: s.mutants,
      world: encodeWorld({ ...s.spec, costs }),
      costs,
      onKernel: (k) => {
        if (watch.observed() === null) k.tick = (steps) => status.tick(steps, k.now);
        watch.onKernel(k);
      },
      clock: io.now,
    });
  } finally {
    status.stop();
  }
  const elapsedMs = io.now() - t0;
  const o = watch.observed()!;
  const w =
    o.recorder === null
      ? { written: [], failed: [] }
      : writeRecording(o.recorder, opts, s, `timed, seed ${opts.seed}`, r.failure?.token ?? null);
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
    costs: costTally(o.kernel),
    failure:
      f === null ? null : { rule: f.rule, task: f.task, message: f.bug.message, token: f.token },
    stoppedAtLimit: r.stepLimited > 0,
    files: writtenFiles(w, opts),
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
      ...formatCosts(report.costs),
      ...(report.observations.length > 0
        ? ['Observations', ...report.observations.map((l) => `  ${l}`), '']
        : []),
      ...formatVerdicts(report.oracles),
      '',
    ];
    if (report.stoppedAtLimit)
      lines.push(
        `Result: stopped at the step limit of ${num(opts.maxSteps)} steps before the world finished: not a bug, but the checks ran only that far (its end-of-run checks did not run); raise it with --max-steps`,
      );
    else if (f === null) lines.push('Result: ok, every check passed');
    else
      lines.push(
        `Result: ${f.bug.message}`,
        '',
        `Replay token: ${f.token}`,
        `  odpsim replay ${f.token}   (timeline; add --trace out.json for Perfetto)`,
      );
    lines.push(...wroteLines(report.files), `elapsed ${formatMs(elapsedMs)}`);
    io.out(lines.join('\n'));
  }
  return reportWrites(io, w, f === null ? EXIT.ok : EXIT.bug);
}
