/**
 * Interval-notifier benchmark: the cost of one invalidateRangeStart + invalidateRangeEnd pair
 * with 10, 1,000 and 100,000 interval subscriptions on one mm, for ranges hitting 0, 1 and 4 of
 * them, with the tree dispatch and with the linear list ('linear' machine option, the design
 * before the interval tree) measured in the same run; and the cost of mmuIntervalReadBegin +
 * mmuIntervalReadRetry on an uncontended subscription against bare baselines.
 * `npm run bench:notifier` (node --expose-gc). Options: `--sizes 10,1000,100000 --reps 5`.
 *
 * One child process per mode and size (`worker.ts`), so tree and linear never share JIT state;
 * each cell is calibrated to ~120 ms per repetition and is the median of `reps`. The callbacks
 * do the minimal driver work (mmu_interval_set_seq). Tracing is off.
 * Target: at 100,000 subscriptions the tree is ≥ 100x faster than the linear list.
 */

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DispatchResult, ReadResult } from './worker.ts';

const HITS = [0, 1, 4] as const;
const TARGET_SUBS = 100_000;
const TARGET_SPEEDUP = 100;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const sizes = arg('sizes', '10,1000,100000').split(',').map(Number);
const reps = Number(arg('reps', '5'));
const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
const t0 = Date.now();
const log = (s: string) =>
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)}s] ${s}\n`);

function child<T>(args: string[]): T {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', worker, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const fmt = (x: number, digits = 0) =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const results = new Map<string, DispatchResult>();
for (const n of sizes) {
  for (const mode of ['tree', 'linear'] as const) {
    log(`dispatch ${mode} ${n}`);
    results.set(`${mode}/${n}`, child<DispatchResult>(['dispatch', mode, String(n), String(reps)]));
  }
}
log('read begin/retry');
const read = child<ReadResult>(['read', String(reps)]);
log('done');

console.log(
  `# Interval-notifier benchmark (node ${process.version}, median of ${reps}, tracing off)\n`,
);
console.log('## Invalidation dispatch: ns per invalidateRangeStart + invalidateRangeEnd pair\n');
console.log(
  '| subscriptions | range hits | tree ns/pair | linear ns/pair | speedup (linear / tree) |',
);
console.log('|---|---|---|---|---|');
const verdicts: string[] = [];
for (const n of sizes) {
  const tree = results.get(`tree/${n}`)!;
  const linear = results.get(`linear/${n}`)!;
  for (const h of HITS) {
    const t = median(tree.ns[h]!);
    const l = median(linear.ns[h]!);
    const speedup = l / t;
    console.log(
      `| ${fmt(n)} | ${h} | ${fmt(t)} | ${fmt(l)} | ${speedup.toFixed(speedup < 10 ? 2 : 0)}x |`,
    );
    if (n === TARGET_SUBS)
      verdicts.push(
        `${h} hit${h === 1 ? '' : 's'}: ${speedup.toFixed(0)}x ${speedup >= TARGET_SPEEDUP ? 'met' : 'NOT met'}`,
      );
  }
}

const model = median(read.model);
const bare = median(read.bare);
const bareGen = median(read.bareGen);
console.log('\n## Reader side: mmuIntervalReadBegin + mmuIntervalReadRetry, uncontended\n');
console.log('| measure | ns/pair | steps/pair | baseline | baseline ns/pair | ratio |');
console.log('|---|---|---|---|---|---|');
console.log(
  `| readBegin + readRetry (1 of 1,000 subscriptions) | ${fmt(model, 1)} | ${fmt(read.steps, 1)} | plain function pair reading a field | ${fmt(bare, 1)} | ${fmt(model / bare)}x |`,
);
console.log(
  `| | | | generator begin (yield*) + plain retry | ${fmt(bareGen, 1)} | ${fmt(model / bareGen, 1)}x |`,
);

console.log(
  `\nTarget at ${fmt(TARGET_SUBS)} subscriptions, tree ≥ ${TARGET_SPEEDUP}x faster than linear:`,
);
if (verdicts.length === 0) console.log(`- not measured (add ${TARGET_SUBS} to --sizes)`);
for (const v of verdicts) console.log(`- ${v}`);
