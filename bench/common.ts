// Harness pieces the mm, notifier and scheduler benchmarks share: command-line options, a
// progress log, worker child processes, medians and Markdown tables.

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The value after `--name` on the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** A progress line on stderr, stamped with the seconds since the benchmark started. */
export function progressLog(): (s: string) => void {
  const t0 = Date.now();
  return (s) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)}s] ${s}\n`);
}

/**
 * Runs the worker script at `url` (a `new URL('./worker.ts', import.meta.url)`) in a fresh
 * `node --expose-gc` process per call, and parses the JSON on its last line of output.
 */
export function workerRunner(url: URL): <T>(args: string[]) => T {
  const worker = fileURLToPath(url);
  return <T>(args: string[]): T => {
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', worker, ...args],
      { encoding: 'utf8', maxBuffer: 1 << 20 },
    );
    return JSON.parse(out.trim().split('\n').pop()!) as T;
  };
}

/** The median (the upper one for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** `x` with thousands separators and `digits` decimals. */
export const fmt = (x: number, digits = 0): string =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** One Markdown table row; an empty cell stays `| |`. */
function tableRow(cells: readonly string[]): string {
  return `|${cells.map((c) => (c === '' ? ' |' : ` ${c} |`)).join('')}`;
}

/** Prints a Markdown table: the header, its rule, then the rows. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  console.log(tableRow(header));
  console.log(`|${'---|'.repeat(header.length)}`);
  for (const r of rows) console.log(tableRow(r));
}
