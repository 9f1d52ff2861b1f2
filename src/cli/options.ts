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
