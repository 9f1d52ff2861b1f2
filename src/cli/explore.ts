// `odpsim explore <scenario>`: many runs under a search strategy; on a violation, the minimised
// schedule as a timeline and the replay token.
import { explore, replay } from '../check/explore.ts';
import { TraceRecorder } from '../kernel/trace-export.ts';
import type { Io } from './io.ts';
import type { ExploreJson } from './json.ts';
import { EXIT } from './options.ts';
import { progressBar } from './progress.ts';
import { formatMs, num, plural } from './report.ts';
import { describeSetup, setup, worldJson } from './setup.ts';
import { buildTimeline, renderTimeline, type TimelineEntry } from './timeline.ts';
import { encodeWorld, worldBuilder } from './world.ts';

/** Options of `odpsim explore`. */
export interface ExploreCommandOptions {
  readonly strategy: 'random' | 'pct' | 'dfs';
  readonly runs: number;
  readonly seed: number;
  readonly depth: number;
  readonly preemptions: number;
  readonly maxSteps: number;
  readonly set: Record<string, number>;
  readonly mutant: string[];
  readonly json: boolean;
}

/** Explores the scenario's interleavings; returns the exit status. */
export function exploreCommand(io: Io, name: string, opts: ExploreCommandOptions): number {
  const s = setup(name, opts.set, opts.mutant);
  const build = worldBuilder(s.spec);
  const bar = progressBar(io, opts.runs, `exploring ${s.spec.scenario.name} (${opts.strategy})`);
  const t0 = io.now();
  let r: ReturnType<typeof explore>;
  try {
    r = explore(build, {
      strategy: opts.strategy,
      runs: opts.runs,
      seed: opts.seed,
      depth: opts.depth,
      preemptions: opts.preemptions,
      maxSteps: opts.maxSteps,
      mutants: s.mutants,
      world: encodeWorld(s.spec),
      onProgress: bar.update,
      clock: io.now,
    });
  } finally {
    bar.stop();
  }
  const elapsedMs = io.now() - t0;
  const f = r.failure;
  let timeline: TimelineEntry[] = [];
  if (f !== null) {
    // Replay the minimised schedule with a recorder to show what happened.
    let rec: TraceRecorder | null = null;
    replay(build, f.token, {
      onKernel: (k) => {
        rec = new TraceRecorder(k.trace);
      },
    });
    if (rec !== null) timeline = buildTimeline(rec);
  }
  const report: ExploreJson = {
    command: 'explore',
    ...worldJson(s),
    options: {
      strategy: opts.strategy,
      runs: opts.runs,
      seed: opts.seed,
      depth: opts.depth,
      preemptions: opts.preemptions,
      maxSteps: opts.maxSteps,
    },
    ok: f === null,
    result: {
      runs: r.runs,
      steps: r.steps,
      contextSwitches: r.contextSwitches,
      preemptions: r.preemptions,
      stoppedBy: r.stoppedBy,
      dfs: r.dfs,
    },
    failure:
      f === null
        ? null
        : {
            rule: f.rule,
            task: f.task,
            message: f.bug.message,
            token: f.token,
            run: f.run,
            steps: f.steps,
            preemptions: f.preemptions,
            original: f.original,
            timeline,
          },
    elapsedMs,
  };
  if (opts.json) io.out(JSON.stringify(report, null, 2));
  else io.out(formatExplore(report, s).join('\n'));
  return f === null ? EXIT.ok : EXIT.bug;
}

function strategyLine(o: ExploreJson['options']): string {
  if (o.strategy === 'pct') return `pct (depth ${o.depth}), seed ${o.seed}`;
  if (o.strategy === 'dfs') return `dfs (at most ${plural(o.preemptions, 'preemption')})`;
  return `random, seed ${o.seed}`;
}

function formatExplore(r: ExploreJson, s: ReturnType<typeof setup>): string[] {
  const res = r.result;
  const lines = [
    `odpsim explore: ${strategyLine(r.options)}, up to ${plural(r.options.runs, 'run')} of at most ${num(r.options.maxSteps)} steps`,
    ...describeSetup(s),
    '',
    `Explored ${plural(res.runs, 'run')}, ${plural(res.steps, 'step')} (${plural(res.contextSwitches, 'context switch', 'context switches')}, ${plural(res.preemptions, 'preemption')})`,
  ];
  if (res.dfs !== null)
    lines.push(
      `  dfs: ${plural(res.dfs.schedules, 'schedule')}${res.dfs.exhausted ? ', the bounded space is exhausted' : ''}`,
    );
  lines.push(`elapsed ${formatMs(r.elapsedMs)}`, '');
  const f = r.failure;
  if (f === null) {
    lines.push(
      res.stoppedBy === 'exhausted'
        ? 'Result: no violation in any schedule within the preemption bound'
        : 'Result: no violation found',
    );
    return lines;
  }
  lines.push(
    `Violation found in run ${num(f.run)}:`,
    `  ${f.message}`,
    `  minimised schedule: ${plural(f.steps, 'step')}, ${plural(f.preemptions, 'preemption')} (found with ${num(f.original.steps)} steps, ${num(f.original.preemptions)} preemptions)`,
    '',
    'Timeline of the minimised schedule (step, task, event):',
    ...renderTimeline(f.timeline),
    '',
    `Replay token: ${f.token}`,
    `  odpsim replay ${f.token} --trace trace.json   (Chrome trace JSON for Perfetto)`,
  );
  return lines;
}
