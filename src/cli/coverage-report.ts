// The coverage section of `odpsim explore --coverage`: the model's universe of items, and the
// report as text (counts, then what was reached, then what was not), grouped so that hundreds
// of items read in a few dozen lines.
import type { CoverageReport, CoverageSection, CoverageUniverse } from '../check/coverage.ts';
import { MM_PATHS, mmPathCondition } from '../mm/mm-path.ts';
import { MN_CALLBACK_ITEMS, mnCondition } from '../mm/mmu-notifier-clients.ts';
import { num, plural } from './report.ts';

/** What the model can reach: every client callback with its events, every mm path. */
export const COVERAGE_UNIVERSE: CoverageUniverse = {
  callbacks: MN_CALLBACK_ITEMS,
  paths: MM_PATHS,
  condition: (item) => mmPathCondition(item) ?? mnCondition(item),
};

const WIDTH = 100;

/** `head` then `parts` joined by commas, wrapped at {@link WIDTH} under `indent`. */
function wrap(head: string, parts: readonly string[], indent: string): string[] {
  const lines: string[] = [];
  let line = head;
  parts.forEach((p, i) => {
    const piece = i < parts.length - 1 ? `${p},` : p;
    if (line.length + 1 + piece.length > WIDTH && line.trim() !== head.trim()) {
      lines.push(line);
      line = indent + piece;
    } else line = `${line} ${piece}`;
  });
  lines.push(line);
  return lines;
}

function entry<K, V>(m: Map<K, V>, key: K, make: () => V): V {
  let v = m.get(key);
  if (v === undefined) {
    v = make();
    m.set(key, v);
  }
  return v;
}

const runs = (n: number | undefined) => (n === undefined ? '' : ` ${num(n)}`);

/**
 * Callback items by client, then by callback: `kvm: invalidate_range_start (UNMAP 2, CLEAR 1),
 * release 3`. Without `counts`, names only.
 */
function callbackLines(
  items: readonly string[],
  counts: Readonly<Record<string, number>> | null,
  indent = '    ',
): string[] {
  // client → callback → its events (null for a callback without a range) with their runs
  const clients = new Map<string, Map<string, { event: string | null; n: string }[]>>();
  for (const item of items) {
    const [client = '', callback = '', event = null] = item.split(' ');
    const cbs = entry(clients, client, () => new Map());
    entry(cbs, callback, () => []).push({ event, n: runs(counts?.[item]) });
  }
  const out: string[] = [];
  for (const [client, cbs] of clients) {
    const parts = [...cbs].map(([cb, events]) =>
      events[0]?.event === null
        ? `${cb}${events[0].n}`
        : `${cb} (${events.map((e) => `${e.event}${e.n}`).join(', ')})`,
    );
    out.push(...wrap(`${indent}${client}:`, parts, `${indent}    `));
  }
  return out;
}

const order = new Map<string, number>(MM_PATHS.map((p, i) => [p, i]));
const rank = (p: string) => order.get(p) ?? MM_PATHS.length;

/** Pair items grouped by their member that comes first in MM_PATHS: `a with b 3, c 1`. */
function pairLines(
  items: readonly string[],
  counts: Readonly<Record<string, number>> | null,
): string[] {
  const groups = new Map<string, string[]>();
  const pairs = items.map((item) => {
    const [a = '', b = ''] = item.split(' ');
    return rank(a) <= rank(b) ? { item, first: a, other: b } : { item, first: b, other: a };
  });
  pairs.sort((x, y) => rank(x.first) - rank(y.first) || rank(x.other) - rank(y.other));
  for (const { item, first, other } of pairs)
    entry(groups, first, () => []).push(`${other}${runs(counts?.[item])}`);
  const out: string[] = [];
  for (const [first, partners] of groups)
    out.push(...wrap(`    ${first} with`, partners, '        '));
  return out;
}

const reachedCount = (s: CoverageSection) => s.total - s.missing.length;

function countLine(what: string, s: CoverageSection): string {
  const line = `  ${what.padEnd(46)}${num(reachedCount(s)).padStart(5)} of ${num(s.total)}`;
  const conditional = Object.keys(s.conditional).length;
  return conditional === 0
    ? line
    : `${line} (of the ${num(s.missing.length)} missing, ${num(conditional)} ${conditional === 1 ? 'needs' : 'need'} more than correct code)`;
}

/** Missing items that need a condition, grouped under it. */
function conditionalLines(
  what: string,
  s: CoverageSection,
  lines: (items: string[], indent: string) => string[],
): string[] {
  const byCondition = new Map<string, string[]>();
  for (const [item, c] of Object.entries(s.conditional)) entry(byCondition, c, () => []).push(item);
  if (byCondition.size === 0) return [];
  const out = [`  ${what} that need more than correct code, by when they run:`];
  for (const [c, items] of byCondition) out.push(`    ${c}:`, ...lines(items, '      '));
  return out;
}

/** The report as text. */
export function formatCoverage(r: CoverageReport): string[] {
  const { callbacks: c, paths: p, races: x } = r;
  const lines = [
    r.runs === 0
      ? 'Coverage: no run was explored'
      : `Coverage of the ${plural(r.runs, 'run')} explored (after each item reached: the runs that reached it):`,
    countLine('notifier callbacks (client, callback, event)', c),
    countLine('mm paths', p),
    `${countLine('racing pairs of mm paths', x)} (not every pair can race)`,
    '',
    'Reached:',
    '  callbacks:',
    ...(reachedCount(c) > 0 ? callbackLines(Object.keys(c.reached), c.reached) : ['    none']),
    ...wrap(
      '  mm paths:',
      reachedCount(p) > 0 ? Object.entries(p.reached).map(([k, n]) => `${k}${runs(n)}`) : ['none'],
      '    ',
    ),
    '  racing pairs (one began while the other ran, in another task of the same machine):',
    ...(reachedCount(x) > 0 ? pairLines(Object.keys(x.reached), x.reached) : ['    none']),
  ];
  const outside = [...Object.entries(c.outside), ...Object.entries(p.outside)];
  if (outside.length > 0)
    lines.push(
      ...wrap(
        '  not in the lists (ops without a client kind?):',
        outside.map(([k, n]) => `${k}${runs(n)}`),
        '    ',
      ),
    );
  // A pair with a path that never ran is implied by the missing paths: list only the others.
  const ran = new Set(Object.keys(p.reached));
  const pairsOfRan = x.missing.filter((item) => item.split(' ').every((q) => ran.has(q)));
  const plainCallbacks = c.missing.filter((item) => c.conditional[item] === undefined);
  const plainPaths = p.missing.filter((item) => p.conditional[item] === undefined);
  lines.push(
    '',
    'Missing:',
    '  callbacks:',
    ...(plainCallbacks.length > 0 ? callbackLines(plainCallbacks, null) : ['    none']),
    ...conditionalLines('callbacks', c, (items, indent) => callbackLines(items, null, indent)),
    ...wrap('  mm paths:', plainPaths.length > 0 ? plainPaths : ['none'], '    '),
    ...conditionalLines('mm paths', p, (items, indent) => wrap(indent.slice(1), items, indent)),
    `  racing pairs: ${num(x.missing.length)}, of which ${num(x.missing.length - pairsOfRan.length)} with a path that never ran; the other ${num(pairsOfRan.length)}:`,
    ...(pairsOfRan.length > 0 ? pairLines(pairsOfRan, null) : ['    none']),
  );
  return lines;
}
