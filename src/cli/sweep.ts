// `odpsim sweep <scenario>`: explores every combination of the given parameter values and
// strategies, one exploration each, and prints a table of outcomes. Sweeping found more model
// bugs than any test; this makes it one command.

import { type ExploreCommandOptions, exploreWorld } from './explore.ts';
import type { Io } from './io.ts';
import type { SweepJson } from './json.ts';
import { EXIT, type SweepSets, UsageError } from './options.ts';
import { formatDuration, num } from './report.ts';
import { setup } from './setup.ts';

/** Options of `odpsim sweep`. */
export interface SweepCommandOptions {
  readonly sets: SweepSets;
  readonly strategy: readonly ('random' | 'pct' | 'dfs')[];
  readonly runs: number;
  readonly seed: number;
  readonly maxSteps: number | undefined;
  readonly jobs: number | undefined;
  readonly failFast: boolean;
  readonly mutant: string[];
  readonly json: boolean;
}

/** Combinations beyond this are refused: a sweep that would run for days is a typo. */
const MAX_COMBINATIONS = 10_000;

/** Every combination of the swept values, the first parameter varying slowest. */
function combinations(sets: SweepSets): Record<string, number>[] {
  let out: Record<string, number>[] = [{}];
  for (const { name, values } of sets)
    out = out.flatMap((c) => values.map((v) => ({ ...c, [name]: v })));
  return out;
}

/** Sweeps; resolves to the exit status (1 when any combination found a violation). */
export async function sweepCommand(
  io: Io,
  name: string,
  opts: SweepCommandOptions,
): Promise<number> {
  const combos = combinations(opts.sets);
  const total = combos.length * opts.strategy.length;
  if (total > MAX_COMBINATIONS)
    throw new UsageError(
      `${num(total)} combinations (at most ${num(MAX_COMBINATIONS)}): sweep fewer values`,
    );
  // Every combination is checked before any runs, so a bad value costs nothing.
  const setups = combos.map((c) => setup(name, c, opts.mutant));
  const t0 = io.now();
  const rows: SweepJson['rows'][number][] = [];
  let interrupted = false;
  outer: for (const [i, s] of setups.entries()) {
    for (const strategy of opts.strategy) {
      const o: ExploreCommandOptions = {
        strategy,
        runs: opts.runs,
        seed: opts.seed,
        depth: 3,
        preemptions: 2,
        maxSteps: opts.maxSteps,
        set: combos[i]!,
        mutant: opts.mutant,
        json: false,
        startRun: 0,
        shard: undefined,
        jobs: strategy === 'dfs' ? undefined : opts.jobs,
        timeline: 'protocol',
        trace: undefined,
        log: undefined,
        html: undefined,
      };
      const r = await exploreWorld(io, s, o, { first: 0, runs: opts.runs });
      const f = r.failure;
      rows.push({
        params: combos[i]!,
        strategy,
        runs: r.pool.next,
        steps: r.pool.steps,
        stepLimited: r.pool.stepLimited,
        outcome:
          f !== null ? 'violation' : r.pool.stoppedBy === 'interrupted' ? 'interrupted' : 'clean',
        rule: f?.rule ?? null,
        run: f?.run ?? null,
        token: f?.token ?? null,
        elapsedMs: r.elapsedMs,
      });
      if (r.pool.stoppedBy === 'interrupted') {
        interrupted = true;
        break outer;
      }
      if (f !== null && opts.failFast) break outer;
    }
  }
  const report: SweepJson = {
    command: 'sweep',
    scenario: name,
    mutants: opts.mutant,
    runs: opts.runs,
    seed: opts.seed,
    combinations: total,
    rows,
    elapsedMs: io.now() - t0,
  };
  if (opts.json) io.out(JSON.stringify(report, null, 2));
  else io.out(formatSweep(report, opts.sets, interrupted).join('\n'));
  if (rows.some((r) => r.outcome === 'violation')) return EXIT.bug;
  return interrupted ? EXIT.interrupted : EXIT.ok;
}

function formatSweep(r: SweepJson, sets: SweepSets, interrupted: boolean): string[] {
  const names = sets.map((s) => s.name);
  const head = [...names, 'strategy', 'runs', 'result'];
  const cells = r.rows.map((row) => [
    ...names.map((n) => String(row.params[n])),
    row.strategy,
    num(row.runs),
    row.outcome === 'violation'
      ? `${row.rule} in run ${num(row.run!)}`
      : row.outcome === 'clean' && row.stepLimited > 0
        ? `clean (${num(row.stepLimited)} cut at the step limit)`
        : row.outcome,
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c]!.length)));
  const line = (row: string[]) =>
    `  ${row.map((v, c) => v.padEnd(widths[c]!)).join('  ')}`.trimEnd();
  const lines = [
    `odpsim sweep: ${r.scenario}, ${num(r.combinations)} combinations of ${num(r.runs)} runs (seed ${r.seed})${r.mutants.length > 0 ? `, mutants ${r.mutants.join(', ')}` : ''}`,
    '',
    line(head),
    ...cells.map(line),
    '',
  ];
  const found = r.rows.filter((row) => row.outcome === 'violation');
  for (const row of found) {
    const sets = Object.entries(row.params).map(([k, v]) => `${k}=${v}`);
    lines.push(`  ${sets.join(' ')} ${row.strategy}: odpsim replay ${row.token}`);
  }
  if (interrupted) lines.push('Interrupted: the table shows the combinations done.');
  const skipped = r.combinations - r.rows.length;
  lines.push(
    `${num(found.length)} of ${num(r.rows.length)} combinations explored found a violation${skipped > 0 ? ` (${num(skipped)} not explored)` : ''}; elapsed ${formatDuration(r.elapsedMs)}`,
  );
  return lines;
}
