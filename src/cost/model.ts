/**
 * The cost model of one run: the cost table with the user's overrides applied, the draws of
 * the costs that vary (from a PRNG of their own, seeded from the run's seed, so the schedule's
 * choices are unchanged and the same seed gives the same timings), and what was charged.
 */
import { Errno } from '../lib/errors.ts';
import { Prng } from '../lib/prng.ts';
import { COST_NAMES, COSTS, type CostEntry, type CostName, type CostQuantiles } from './table.ts';

/** Overrides of cost entries, by name: a new base, a new per-unit part, or both. */
export type CostOverrides = Readonly<
  Partial<Record<CostName, { readonly base?: number | CostQuantiles; readonly perUnit?: number }>>
>;

/** What a run charged to one cost: how often, and the virtual time in all. */
export interface CostTally {
  count: number;
  ns: number;
}

const QUANTILE_POINTS: readonly (readonly [keyof CostQuantiles, number])[] = [
  ['min', 0],
  ['p50', 0.5],
  ['p95', 0.95],
  ['p99', 0.99],
  ['max', 1],
];

/** The value of a quantile distribution at u in [0, 1): linear between the given quantiles. */
export function quantileAt(q: CostQuantiles, u: number): number {
  for (let i = 1; i < QUANTILE_POINTS.length; i++) {
    const [hiKey, hiU] = QUANTILE_POINTS[i]!;
    const [loKey, loU] = QUANTILE_POINTS[i - 1]!;
    if (u <= hiU) return q[loKey] + ((q[hiKey] - q[loKey]) * (u - loU)) / (hiU - loU);
  }
  return q.max;
}

/** EINVAL unless `q` is a non-decreasing set of finite non-negative quantiles. */
export function checkQuantiles(name: string, q: CostQuantiles, min = 0): void {
  let prev = min;
  for (const [key] of QUANTILE_POINTS) {
    const v = q[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < prev)
      throw new Errno(
        'EINVAL',
        `cost ${name}: ${key} must be a finite duration ≥ ${prev} ns (quantiles min ≤ p50 ≤ p95 ≤ p99 ≤ max), got ${String(v)}`,
      );
    prev = v;
  }
}

/** EINVAL for a name that is not in the cost table, with the known names. */
export function checkCostName(name: string): CostName {
  if (Object.hasOwn(COSTS, name)) return name as CostName;
  throw new Errno(
    'EINVAL',
    `unknown cost ${JSON.stringify(name)} (known: ${COST_NAMES.join(', ')})`,
  );
}

/** The table with `overrides` applied; EINVAL for an unknown name or a bad value. */
export function resolveCosts(overrides: CostOverrides = {}): Record<CostName, CostEntry> {
  const out = { ...COSTS } as Record<CostName, CostEntry>;
  for (const [key, o] of Object.entries(overrides)) {
    const name = checkCostName(key);
    if (o === undefined) continue;
    const entry = out[name];
    if (o.base !== undefined) {
      if (typeof o.base === 'number') checkDuration(name, 'base', o.base, entry.min ?? 0);
      else checkQuantiles(name, o.base, entry.min ?? 0);
    }
    if (o.perUnit !== undefined) {
      if (entry.perUnit === undefined)
        throw new Errno('EINVAL', `cost ${name} has no per-page or per-byte part to override`);
      checkDuration(name, 'per unit', o.perUnit);
    }
    out[name] = {
      ...entry,
      ...(o.base === undefined ? {} : { base: o.base }),
      ...(o.perUnit === undefined ? {} : { perUnit: o.perUnit }),
    };
  }
  return out;
}

function checkDuration(name: string, part: string, ns: number, min = 0): void {
  if (typeof ns !== 'number' || !Number.isFinite(ns) || ns < min)
    throw new Errno(
      'EINVAL',
      `cost ${name}: the ${part} must be a finite duration ≥ ${min} ns, got ${String(ns)}`,
    );
}

/** Seeds the cost PRNG apart from the world's and the strategy's. */
const COST_SEED_SALT = 0x2c1b3c6d;

/**
 * A 32-bit avalanche (the murmur3 finaliser): xorshift's first outputs from nearby seeds are
 * nearly equal, so seeds 1, 2, 3 would draw almost the same first costs without it.
 */
function mixSeed(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The costs of one run. */
export class CostModel {
  readonly entries: Readonly<Record<CostName, CostEntry>>;
  /** What the run charged, by cost. */
  readonly tally = new Map<CostName, CostTally>();
  private readonly prng: Prng;

  constructor(seed: number, overrides?: CostOverrides) {
    this.entries = resolveCosts(overrides);
    this.prng = new Prng(mixSeed(seed ^ COST_SEED_SALT));
  }

  /**
   * The virtual time of one `name` operation covering `units` pages (or bytes), drawn when the
   * base varies; counted in the tally. Rounded to whole ns.
   */
  draw(name: CostName, units = 1): number {
    const e = this.entries[name];
    const base = typeof e.base === 'number' ? e.base : quantileAt(e.base, this.prng.nextFloat());
    const extra = e.unit === 'page' ? Math.max(0, units - 1) : units;
    const ns = Math.round(base + (e.perUnit ?? 0) * extra);
    const t = this.tally.get(name);
    if (t === undefined) this.tally.set(name, { count: 1, ns });
    else {
      t.count++;
      t.ns += ns;
    }
    return ns;
  }
}
