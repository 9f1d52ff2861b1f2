import type { StrategyKind } from '../kernel/strategy.ts';
import { Errno } from '../lib/errors.ts';

/** Everything needed to rerun one schedule exactly. */
export interface ReplayRecord {
  /** The strategy that found the schedule (informational: replay follows the decisions). */
  readonly strategy: StrategyKind;
  /** The run's seed, which seeds the world's PRNG. */
  readonly seed: number;
  /** The step limit of the run. */
  readonly maxSteps: number;
  /** Task ids chosen at each point where two or more tasks could run. */
  readonly decisions: readonly number[];
  /** Mutants enabled in the world. */
  readonly mutants: readonly string[];
  /** Opaque description of the world (the CLI stores the scenario and its parameters). */
  readonly world: string;
}

const PREFIX = 'odp2';
/** Tokens of odpsim 0.1 (no checksum): refused with a clear message. */
const OLD_PREFIX = 'odp1';
const FORMAT = `${PREFIX}.<strategy>.<seed>.<maxSteps>.<decisions>[.<context>].<checksum>`;

/** FNV-1a over the token's other fields, base 36: catches an edited or truncated token. */
function checksum(body: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < body.length; i++) {
    h ^= body.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(36).padStart(7, '0');
}
const STRATEGIES: readonly StrategyKind[] = ['random', 'pct', 'dfs', 'replay', 'timed'];

/**
 * Encodes a replay token: `odp2.<strategy>.<seed>.<maxSteps>.<decisions>[.<context>].<checksum>`,
 * where decisions are base-36 task ids run-length encoded (`3_12` = task 3 twelve times, joined
 * by `-`), the context is base64url JSON of the mutants and world, and the checksum (FNV-1a of
 * the rest) makes an edited token an error rather than another schedule. Shell-safe.
 */
export function encodeToken(r: ReplayRecord): string {
  const parts = [
    PREFIX,
    r.strategy,
    r.seed.toString(36),
    r.maxSteps.toString(36),
    encodeDecisions(r.decisions),
  ];
  if (r.mutants.length > 0 || r.world !== '') {
    const ctx = JSON.stringify({ m: r.mutants, w: r.world });
    parts.push(Buffer.from(ctx, 'utf8').toString('base64url'));
  }
  const body = parts.join('.');
  return `${body}.${checksum(body)}`;
}

/** Decodes a token from {@link encodeToken}; a malformed one is an EINVAL naming the part. */
export function decodeToken(token: string): ReplayRecord {
  if (typeof token !== 'string') throw new Errno('EINVAL', 'replay token must be a string');
  const all = token.trim().split('.');
  if (all[0] === OLD_PREFIX)
    throw new Errno(
      'EINVAL',
      'this replay token was made by odpsim 0.1 (odp1, no checksum); rerun the exploration to get a current one',
    );
  if (all[0] !== PREFIX || all.length < 6 || all.length > 7) {
    throw new Errno(
      'EINVAL',
      `not an odpsim replay token (expected ${FORMAT}): ${JSON.stringify(token.slice(0, 40))}`,
    );
  }
  const sum = all.pop()!;
  if (checksum(all.join('.')) !== sum)
    throw new Errno(
      'EINVAL',
      'the replay token was altered or truncated (its checksum does not match): copy it again from the report',
    );
  const parts = all;
  const strategy = parts[1] as StrategyKind;
  if (!STRATEGIES.includes(strategy))
    throw new Errno('EINVAL', `replay token names unknown strategy ${JSON.stringify(parts[1])}`);
  const seed = parseBase36(parts[2]!, 'seed');
  const maxSteps = parseBase36(parts[3]!, 'maxSteps');
  const decisions = decodeDecisions(parts[4]!);
  let mutants: string[] = [];
  let world = '';
  if (parts[5] !== undefined) {
    const ctx = parseContext(parts[5]);
    mutants = ctx.m;
    world = ctx.w;
  }
  return { strategy, seed, maxSteps, decisions, mutants, world };
}

function encodeDecisions(ds: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ds.length; ) {
    const id = ds[i]!;
    let j = i + 1;
    while (j < ds.length && ds[j] === id) j++;
    const n = j - i;
    out.push(n === 1 ? id.toString(36) : `${id.toString(36)}_${n.toString(36)}`);
    i = j;
  }
  return out.join('-');
}

function decodeDecisions(s: string): number[] {
  if (s === '') return [];
  const out: number[] = [];
  for (const run of s.split('-')) {
    const [id, count] = run.split('_');
    const taskId = parseBase36(id ?? '', 'decision');
    const n = count === undefined ? 1 : parseBase36(count, 'decision count');
    for (let k = 0; k < n; k++) out.push(taskId);
  }
  return out;
}

function parseBase36(s: string, what: string): number {
  if (!/^[0-9a-z]+$/.test(s))
    throw new Errno('EINVAL', `replay token ${what} ${JSON.stringify(s)} is not base-36`);
  const v = Number.parseInt(s, 36);
  if (!Number.isSafeInteger(v))
    throw new Errno('EINVAL', `replay token ${what} ${JSON.stringify(s)} is out of range`);
  return v;
}

function parseContext(s: string): { m: string[]; w: string } {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as {
      m?: unknown;
      w?: unknown;
    };
    const m =
      Array.isArray(v.m) && v.m.every((x) => typeof x === 'string') ? (v.m as string[]) : null;
    if (m === null || typeof v.w !== 'string') throw new Error('bad shape');
    return { m, w: v.w };
  } catch {
    throw new Errno(
      'EINVAL',
      'replay token context is not valid (expected base64url JSON with mutants and world)',
    );
  }
}
