/**
 * Cost overrides as users write them: `--cost NAME=VALUE` on the command line and a JSON file
 * of the same assignments (`--costs FILE`). A VALUE is a duration with its unit (`128us`,
 * `655.36ms`, `5000ns`; a bare number is ns) or five quantiles
 * (`min:110us,p50:124us,p95:159us,p99:170us,max:373us`); `NAME/page=VALUE` (or `/byte`) sets
 * the part that grows with the operation's size.
 */
import { Errno } from '../lib/errors.ts';
import { type CostOverrides, checkCostName, checkQuantiles } from './model.ts';
import { COSTS, type CostEntry, type CostName, type CostQuantiles } from './table.ts';

const UNIT_NS: Readonly<Record<string, number>> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9 };

/** A duration in ns from `128us`, `0.5ms`, `5000ns`, `2s` or a bare number of ns. */
export function parseDuration(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*(ns|us|µs|ms|s)?\s*$/.exec(text);
  if (m === null)
    throw new Errno(
      'EINVAL',
      `${what}: ${JSON.stringify(text)} is not a duration (a number with ns, us, ms or s; a bare number is ns)`,
    );
  return Number(m[1]) * UNIT_NS[m[2] ?? 'ns']!;
}

const QUANTILE_KEYS = ['min', 'p50', 'p95', 'p99', 'max'] as const;

/** Quantiles from `min:110us,p50:124us,p95:159us,p99:170us,max:373us` (all five). */
function parseQuantiles(text: string, name: string): CostQuantiles {
  const out: Partial<Record<(typeof QUANTILE_KEYS)[number], number>> = {};
  for (const part of text.split(',')) {
    const [key, value, extra] = part.split(':');
    if (!QUANTILE_KEYS.includes(key as never) || value === undefined || extra !== undefined)
      throw new Errno(
        'EINVAL',
        `cost ${name}: ${JSON.stringify(part)} is not a quantile (min, p50, p95, p99, max as key:duration)`,
      );
    out[key as (typeof QUANTILE_KEYS)[number]] = parseDuration(value, `cost ${name} ${key}`);
  }
  const missing = QUANTILE_KEYS.filter((k) => out[k] === undefined);
  if (missing.length > 0)
    throw new Errno('EINVAL', `cost ${name}: quantiles need ${missing.join(', ')} too`);
  const q = out as CostQuantiles;
  checkQuantiles(name, q);
  return q;
}

function parseBase(text: string, name: string): number | CostQuantiles {
  return text.includes(':') ? parseQuantiles(text, name) : parseDuration(text, `cost ${name}`);
}

type Mutable = Partial<Record<CostName, { base?: number | CostQuantiles; perUnit?: number }>>;

/** Adds `NAME=VALUE` or `NAME/page=VALUE` (`/byte` for a per-byte cost) to `into`. */
export function addCostAssignment(into: CostOverrides, text: string): CostOverrides {
  const eq = text.indexOf('=');
  if (eq < 0)
    throw new Errno(
      'EINVAL',
      `--cost takes NAME=VALUE (see odpsim costs), got ${JSON.stringify(text)}`,
    );
  const [rawName, unit, extra] = text.slice(0, eq).trim().split('/');
  const name = checkCostName(rawName!);
  if (extra !== undefined)
    throw new Errno(
      'EINVAL',
      `--cost takes NAME=VALUE or NAME/UNIT=VALUE, got ${JSON.stringify(text)}`,
    );
  const value = text.slice(eq + 1).trim();
  const out: Mutable = { ...into };
  const prev = out[name] ?? {};
  if (unit === undefined) out[name] = { ...prev, base: parseBase(value, name) };
  else {
    const expected = (COSTS[name] as CostEntry).unit;
    if (expected === undefined || unit !== expected)
      throw new Errno(
        'EINVAL',
        expected === undefined
          ? `cost ${name} does not grow with the size of the operation (set ${name}=VALUE)`
          : `cost ${name} grows per ${expected}, not per ${JSON.stringify(unit)} (set ${name}/${expected}=VALUE)`,
      );
    out[name] = { ...prev, perUnit: parseDuration(value, `cost ${name}/${unit}`) };
  }
  return out;
}

/**
 * Overrides from a JSON object: `{ "NAME": VALUE, "NAME/page": VALUE }`, a VALUE being a
 * string as on the command line or a number of ns.
 */
export function parseCostFile(text: string, file: string): CostOverrides {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Errno('EINVAL', `${file}: not JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new Errno(
      'EINVAL',
      `${file}: expected an object of cost assignments, { "NAME": "128us" }`,
    );
  let out: CostOverrides = {};
  for (const [key, value] of Object.entries(json)) {
    if (typeof value !== 'string' && typeof value !== 'number')
      throw new Errno(
        'EINVAL',
        `${file}: ${JSON.stringify(key)} must be a duration string or a number of ns`,
      );
    try {
      out = addCostAssignment(out, `${key}=${String(value)}`);
    } catch (e) {
      if (e instanceof Errno)
        throw new Errno(e.code, `${file}: ${e.message.slice(e.code.length + 2)}`);
      throw e;
    }
  }
  return out;
}
