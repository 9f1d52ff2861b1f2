// `npm run bench:mutants`: the mutation score of the explorer. Every built-in mutant is explored
// against `swarm` (pct and random, seeds 1-3, up to 10,000 runs each) and against the scenario
// its reach names (its own strategy and seed); then the correct code runs 100,000 runs of
// swarm. Prints found / runs to find / CPU seconds / minimised size per mutant, against the
// goals: every mutant found by swarm within 10,000 runs, the median time to find under one
// CPU second, the correct code clean.
// Run: npm run bench:mutants [-- --budget 10000 --clean 100000 --mutant NAME --jobs N]
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MUTANTS, mutantRules } from '../../src/check/mutants.ts';
import { arg, fmt, median, printTable, progressLog } from '../common.ts';
import type { Hunt } from './worker.ts';

const budget = Number(arg('budget', '10000'));
const cleanRuns = Number(arg('clean', '100000'));
const only = arg('mutant', '');
const jobs = Number(arg('jobs', String(availableParallelism())));
const SWARM_PLAN = 'pct:1,pct:2,pct:3,random:1,random:2,random:3';
const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
const log = progressLog();

function hunt(
  scenario: string,
  mutant: string,
  runs: number,
  plan: string,
  set = {},
  rules: readonly string[] = [],
): Promise<Hunt[]> {
  const args = [
    '--import',
    'tsx',
    worker,
    scenario,
    mutant,
    String(runs),
    plan,
    JSON.stringify(set),
    rules.join(','),
  ];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { maxBuffer: 1 << 24 }, (err, out, errOut) => {
      // A worker that crashed is a row that says so, not the end of the benchmark.
      if (err === null) resolve(JSON.parse(out.trim().split('\n').pop()!) as Hunt[]);
      else {
        log(
          `${scenario} ${mutant}: worker failed: ${errOut.trim().split('\n').slice(-4).join(' ')}`,
        );
        resolve([]);
      }
    });
  });
}

/** Runs the thunks, `jobs` at a time, in order. */
async function pool<T>(thunks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(thunks.length);
  let next = 0;
  const lane = async () => {
    while (next < thunks.length) {
      const i = next++;
      out[i] = await thunks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, thunks.length) }, lane));
  return out;
}

const mutants = MUTANTS.filter((m) => only === '' || m.name === only);
if (mutants.length === 0) throw new Error(`no mutant ${only}`);
const tasks = mutants.flatMap((m) => [
  async () => {
    const h = await hunt('swarm', m.name, budget, SWARM_PLAN, {}, mutantRules(m));
    log(`${m.name}: swarm ${h.filter((x) => x.found).length}/${h.length}`);
    return h;
  },
  async () =>
    m.reach === undefined
      ? []
      : await hunt(
          m.reach.scenario,
          m.name,
          budget,
          `${m.reach.strategy}:${m.reach.seed}`,
          m.reach.set,
          mutantRules(m),
        ),
]);
// The clean runs, split in chunks of seeds so the lanes share them.
const CLEAN_CHUNK = 12_500;
const cleanTasks = Array.from(
  { length: Math.ceil(cleanRuns / CLEAN_CHUNK) },
  (_, i) => () =>
    hunt(
      'swarm',
      '-',
      Math.min(CLEAN_CHUNK, cleanRuns - i * CLEAN_CHUNK),
      `${i % 2 === 0 ? 'pct' : 'random'}:${100 + i}`,
    ),
);
const results = await pool([...tasks, ...cleanTasks]);

const rows: string[][] = [];
const swarmMedians: number[] = [];
let foundAll = 0;
for (const [i, m] of mutants.entries()) {
  const sw = results[2 * i]!;
  const reach = results[2 * i + 1]!;
  const found = sw.filter((h) => h.found);
  const first = found[0];
  // A hunt that did not find the mutant counts as the whole budget (and its time).
  const runsMed = median(sw.map((h) => (h.found ? h.runs : Number.POSITIVE_INFINITY)));
  const cpuMed = median(sw.map((h) => (h.found ? h.cpuS : Number.POSITIVE_INFINITY)));
  if (found.length > 0) foundAll++;
  if (Number.isFinite(cpuMed)) swarmMedians.push(cpuMed);
  const r = reach[0];
  rows.push([
    m.name,
    sw.length === 0 ? 'worker failed' : `${found.length}/${sw.length}`,
    Number.isFinite(runsMed) ? fmt(runsMed) : `> ${fmt(budget)}`,
    Number.isFinite(cpuMed) ? fmt(cpuMed, 2) : '—',
    first === undefined
      ? '—'
      : `${first.steps} steps, ${first.preemptions} pre., ${first.kept}/${first.operations} ops`,
    r === undefined
      ? 'test world only'
      : r.found
        ? `${fmt(r.runs)} (${fmt(r.cpuS, 2)} s)`
        : `not in ${fmt(r.runs)}`,
  ]);
}
console.log(
  `\n## Mutants against swarm (${SWARM_PLAN}, ≤ ${fmt(budget)} runs each) and their own scenario\n`,
);
printTable(
  [
    'mutant',
    'swarm found',
    'runs to find (median)',
    'CPU s to find (median)',
    'minimised (first found)',
    'own scenario: runs (CPU s)',
  ],
  rows,
);
const clean = results.slice(2 * mutants.length).flat();
const cleanDone = clean.reduce((n, h) => n + h.runs, 0);
const cleanFails = clean.filter((h) => h.found);
const medianAll = median(
  mutants.map((_, i) => {
    const sw = results[2 * i]!;
    return median(sw.map((h) => (h.found ? h.cpuS : Number.POSITIVE_INFINITY)));
  }),
);
console.log('\n## Goals\n');
printTable(
  ['goal', 'measured', 'met'],
  [
    [
      'every mutant found by swarm within the budget',
      `${foundAll}/${mutants.length}`,
      foundAll === mutants.length ? 'yes' : 'no',
    ],
    [
      'median CPU time to find < 1 s',
      Number.isFinite(medianAll) ? `${fmt(medianAll, 2)} s` : 'unbounded (half not found)',
      medianAll < 1 ? 'yes' : 'no',
    ],
    [
      'correct code clean under 100,000 swarm runs',
      cleanFails.length === 0
        ? `${fmt(cleanDone)} runs clean`
        : `${cleanFails.map((h) => `${h.rule} (${h.strategy}:${h.seed}, run ${h.runs - 1})`).join('; ')}`,
      cleanFails.length === 0 && cleanDone >= 100_000 ? 'yes' : 'no',
    ],
  ],
);

const others = results.flatMap((hs, i) =>
  hs.flatMap((h) =>
    h.others.map(
      (o) =>
        `${i < 2 * mutants.length ? mutants[i >> 1]!.name : 'clean'} ${h.strategy}:${h.seed} ${o}`,
    ),
  ),
);
if (others.length > 0) {
  console.log(
    '\n## Failures under another rule met on the way (not counted as finding the mutant)\n',
  );
  for (const o of others.slice(0, 40)) console.log(`- ${o}`);
  if (others.length > 40) console.log(`- … ${others.length - 40} more`);
}
