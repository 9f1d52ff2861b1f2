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

import { arg, fmt, median, printTable, progressLog, workerRunner } from '../common.ts';
import type { DispatchResult, ReadResult } from './worker.ts';

const HITS = [0, 1, 4] as const;
const TARGET_SUBS = 100_000;
const TARGET_SPEEDUP = 100;

const sizes = arg('sizes', '10,1000,100000').split(',').map(Number);
const reps = Number(arg('reps', '5'));
const child = workerRunner(new URL('./worker.ts', import.meta.url));
const log = progressLog();

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
const dispatchRows: string[][] = [];
const verdicts: string[] = [];
for (const n of sizes) {
  const tree = results.get(`tree/${n}`)!;
  const linear = results.get(`linear/${n}`)!;
  for (const h of HITS) {
    const t = median(tree.ns[h]!);
    const l = median(linear.ns[h]!);
    const speedup = l / t;
    dispatchRows.push([
      fmt(n),
      String(h),
      fmt(t),
      fmt(l),
      `${speedup.toFixed(speedup < 10 ? 2 : 0)}x`,
    ]);
    if (n === TARGET_SUBS)
      verdicts.push(
        `${h} hit${h === 1 ? '' : 's'}: ${speedup.toFixed(0)}x ${speedup >= TARGET_SPEEDUP ? 'met' : 'NOT met'}`,
      );
  }
}
printTable(
  ['subscriptions', 'range hits', 'tree ns/pair', 'linear ns/pair', 'speedup (linear / tree)'],
  dispatchRows,
);

const model = median(read.model);
const bare = median(read.bare);
const bareGen = median(read.bareGen);
console.log('\n## Reader side: mmuIntervalReadBegin + mmuIntervalReadRetry, uncontended\n');
printTable(
  ['measure', 'ns/pair', 'steps/pair', 'baseline', 'baseline ns/pair', 'ratio'],
  [
    [
      'readBegin + readRetry (1 of 1,000 subscriptions)',
      fmt(model, 1),
      fmt(read.steps, 1),
      'plain function pair reading a field',
      fmt(bare, 1),
      `${fmt(model / bare)}x`,
    ],
    [
      '',
      '',
      '',
      'generator begin (yield*) + plain retry',
      fmt(bareGen, 1),
      `${fmt(model / bareGen, 1)}x`,
    ],
  ],
);

console.log(
  `\nTarget at ${fmt(TARGET_SUBS)} subscriptions, tree ≥ ${TARGET_SPEEDUP}x faster than linear:`,
);
if (verdicts.length === 0) console.log(`- not measured (add ${TARGET_SUBS} to --sizes)`);
for (const v of verdicts) console.log(`- ${v}`);
