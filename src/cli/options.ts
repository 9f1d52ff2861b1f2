// Parsing of option values; a bad one is a usage error (exit status 2).
import { InvalidArgumentError } from 'commander';

/** A usage error found after parsing (unknown scenario, parameter or mutant): exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Exit statuses of every command. */
export const EXIT = {
  /** The run was clean (run, explore, replay) or the command succeeded (list). */
  ok: 0,
  /** A bug was found (run, explore) or reproduced (replay). */
  bug: 1,
  /** Bad usage: an unknown command, option, scenario, parameter or mutant; a bad value or token. */
  usage: 2,
  /** odpsim itself failed (a crash outside any simulated run). */
  internal: 3,
  /** The run was clean but an output file (--trace, --log) could not be written. */
  output: 4,
  /** Interrupted (Ctrl-C): the report says what was explored and where to resume. */
  interrupted: 130,
} as const;

/** A commander argument parser for an integer in [min, max]. */
export function intOption(min: number, max: number): (value: string) => number {
  return (value) => {
    const v = /^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(v) || v < min || v > max)
      throw new InvalidArgumentError(`expected an integer in [${min}, ${max}], got ${value}`);
    return v;
  };
}

/** Collects repeatable `--set name=value[,name=value]` options into one record. */
export function collectSet(
  value: string,
  previous: Record<string, number> | undefined,
): Record<string, number> {
  const out = { ...previous };
  for (const part of value.split(',')) {
    const m = /^\s*([A-Za-z][\w-]*)\s*=\s*(-?\d+)\s*$/.exec(part);
    if (m === null)
      throw new InvalidArgumentError(`expected name=integer (e.g. pages=8), got ${part}`);
    const v = Number(m[2]);
    if (!Number.isSafeInteger(v)) throw new InvalidArgumentError(`${m[2]} is too large`);
    out[m[1]!] = v;
  }
  return out;
}

/** Collects a repeatable list option, also accepting comma-separated values. */
export function collectList(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  ];
}

/** Parses `--shard i/n` (1 ≤ i ≤ n ≤ 10,000). */
export function shardOption(value: string): { index: number; count: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
  const index = m === null ? Number.NaN : Number(m[1]);
  const count = m === null ? Number.NaN : Number(m[2]);
  if (!(count >= 1 && count <= 10_000 && index >= 1 && index <= count))
    throw new InvalidArgumentError(
      `expected i/n with 1 <= i <= n <= 10000 (e.g. 2/4), got ${value}`,
    );
  return { index, count };
}

/** The values of each swept parameter, in the order given. */
export type SweepSets = readonly { readonly name: string; readonly values: readonly number[] }[];

/** At most this many values per swept parameter: a typo like 1..100000000 is refused. */
const MAX_SWEEP_VALUES = 1_000;

/**
 * Collects repeatable `--set name=values` of `odpsim sweep`: values are integers and ranges
 * `a..b` separated by commas (`pages=4,8,64`, `frames=2..16`); a name given twice is an error.
 */
export function collectSweep(value: string, previous: SweepSets | undefined): SweepSets {
  const m = /^\s*([A-Za-z][\w-]*)\s*=\s*(.+)$/.exec(value);
  if (m === null)
    throw new InvalidArgumentError(
      `expected name=values (e.g. pages=4,8,64 or frames=2..16), got ${value}`,
    );
  const name = m[1]!;
  if ((previous ?? []).some((s) => s.name === name))
    throw new InvalidArgumentError(`${name} is given twice (list all its values in one --set)`);
  const values: number[] = [];
  for (const part of m[2]!.split(',')) {
    const r = /^\s*(-?\d+)\s*(?:\.\.\s*(-?\d+)\s*)?$/.exec(part);
    if (r === null)
      throw new InvalidArgumentError(`${name}: expected an integer or a range a..b, got ${part}`);
    const lo = Number(r[1]);
    const hi = r[2] === undefined ? lo : Number(r[2]);
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo)
      throw new InvalidArgumentError(
        `${name}: ${part} is not a range of integers a..b with a <= b`,
      );
    if (values.length + (hi - lo + 1) > MAX_SWEEP_VALUES)
      throw new InvalidArgumentError(`${name}: more than ${MAX_SWEEP_VALUES} values`);
    for (let v = lo; v <= hi; v++) if (!values.includes(v)) values.push(v);
  }
  return [...(previous ?? []), { name, values }];
}

const STRATEGY_NAMES = ['random', 'pct', 'dfs'] as const;

/** Parses a comma-separated list of explore strategies. */
export function strategyList(value: string): ('random' | 'pct' | 'dfs')[] {
  const out: ('random' | 'pct' | 'dfs')[] = [];
  for (const part of value.split(',').map((s) => s.trim())) {
    const k = STRATEGY_NAMES.find((n) => n === part);
    if (k === undefined)
      throw new InvalidArgumentError(
        `unknown strategy ${part} (choose from ${STRATEGY_NAMES.join(', ')})`,
      );
    if (!out.includes(k)) out.push(k);
  }
  return out;
}
