// `odpsim study <name>`: runs a study in virtual time, prints its tables and writes its plots.
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Errno } from '../lib/errors.ts';
import { findStudy, STUDIES } from '../study/index.ts';
import { writeStudyPlots } from '../study/plot.ts';
import type { StudyResult } from '../study/study.ts';
import { costOverrides, errnoDetail } from './cost-options.ts';
import type { Io } from './io.ts';
import { EXIT, UsageError } from './options.ts';
import { formatMs, formatTable, plural } from './report.ts';

/** Options of `odpsim study`. */
export interface StudyCommandOptions {
  /** The study's list options as typed, by name (`--mrs 1,100` is { mrs: '1,100' }). */
  readonly lists: Readonly<Record<string, string | undefined>>;
  readonly seed: number;
  /** `--cost NAME=VALUE` assignments, in order. */
  readonly cost: readonly string[];
  /** `--costs FILE`: a JSON object of assignments, applied before the `--cost` ones. */
  readonly costs?: string | undefined;
  /** Where the plots go; null with --no-plots. */
  readonly out: string | null;
  readonly json: boolean;
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, K: 1024, M: 1024 * 1024 };

/** A comma-separated list of positive numbers (sizes may end in K or M); a UsageError else. */
export function parseNumberList(option: string, text: string, sizes = false): number[] {
  return text.split(',').map((raw) => {
    const c = raw.trim();
    const m = (sizes ? /^(\d+(?:\.\d+)?)([KM]?)$/ : /^(\d+(?:\.\d+)?)()$/).exec(c);
    const n = m === null ? Number.NaN : Number(m[1]) * SIZE_UNITS[m[2]!]!;
    if (!Number.isFinite(n))
      throw new UsageError(
        `--${option} takes numbers${sizes ? ' (with K or M for KiB, MiB)' : ''}, comma separated, got ${JSON.stringify(c)}`,
      );
    return n;
  });
}

/** Runs the study; returns the exit status. */
export function studyCommand(io: Io, name: string, opts: StudyCommandOptions): number {
  const study = findStudy(name);
  if (study === undefined)
    throw new UsageError(
      `unknown study ${JSON.stringify(name)} (known: ${STUDIES.map((s) => s.name).join(', ')})`,
    );
  const lists: Record<string, number[]> = {};
  for (const [option, text] of Object.entries(opts.lists)) {
    if (text === undefined) continue;
    const spec = study.lists.find((l) => l.name === option);
    if (spec === undefined)
      throw new UsageError(`--${option} is not an option of study ${name} (${takes(name)})`);
    lists[option] = parseNumberList(option, text, spec.sizes === true);
  }
  const costs = costOverrides(opts.costs, opts.cost);
  if (opts.out !== null) prepareOutDir(opts.out);
  const t0 = io.now();
  let result: StudyResult;
  try {
    result = study.run({ costs, seed: opts.seed }, lists);
  } catch (e) {
    // The studies check their parameters before running anything.
    if (e instanceof Errno && e.code === 'EINVAL') throw new UsageError(errnoDetail(e));
    throw e;
  }
  const elapsedMs = io.now() - t0;
  const files: string[] = [];
  const failed: string[] = [];
  if (opts.out !== null) {
    try {
      const w = writeStudyPlots(opts.out, result);
      files.push(w.html, ...w.svgs);
    } catch (e) {
      // A file system error is the user's path; anything else is a bug of the plot.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === undefined) throw e;
      failed.push(
        `odpsim: could not write the plots to ${opts.out} (${code}); the report is complete`,
      );
    }
  }
  if (opts.json) {
    const { study: _, ...rest } = result;
    io.out(JSON.stringify({ command: 'study', study: name, ...rest, files, elapsedMs }, null, 2));
  } else io.out(formatStudy(result, files, elapsedMs).join('\n'));
  for (const line of failed) io.err(line);
  return failed.length > 0 ? EXIT.output : EXIT.ok;
}

/**
 * Makes sure the plots can go to `dir` before the study runs, as every output path is checked
 * first: an existing directory that can be written, or one created level by level under an
 * existing one (a recursive mkdir can spin for ever on a file system like /proc).
 */
export function prepareOutDir(dir: string): void {
  if (dir === '') throw new UsageError('--out: empty directory name');
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(at);
    } catch {
      st = undefined;
    }
    if (st !== undefined) {
      if (!st.isDirectory()) throw new UsageError(`--out ${dir}: ${at} is not a directory`);
      break;
    }
    missing.unshift(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  try {
    for (const d of missing) mkdirSync(d);
    accessSync(resolve(dir), constants.W_OK);
  } catch (e) {
    throw new UsageError(`--out ${dir}: cannot write (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
}

function takes(name: string): string {
  const lists = findStudy(name)!.lists.map((l) => `--${l.name}`);
  return lists.length === 0 ? 'it takes no list' : `it takes ${lists.join(', ')}`;
}

/** The report: what was run, each table, the notes, the files. */
function formatStudy(r: StudyResult, files: readonly string[], elapsedMs: number): string[] {
  const lines = [`odpsim study ${r.study}: ${r.title}`, ''];
  for (const t of r.tables) lines.push(t.title, ...formatTable(t.header, t.rows), '');
  lines.push(...r.notes);
  if (files.length > 0)
    lines.push('', `plots: ${files[0]} (and ${plural(files.length - 1, 'SVG file')})`);
  lines.push(`elapsed ${formatMs(elapsedMs)}`);
  return lines;
}
