/**
 * mm benchmark: CPU fault throughput (anonymous first touch, COW after fork), mmap/touch/munmap
 * cycles, each against a bare JS loop doing the same data-structure work in the same process,
 * transparent huge page first touch (one write per 2 MiB PMD of a MADV_HUGEPAGE region, per
 * 4 KiB page made present) against the model's own small-page first touch (target: cheaper per
 * page, ratio < 1), a reclaim scan over an LRU of pinned pages at two machine sizes (it must
 * scale linearly), and the heap of a 1,000,000-page address space with 250,000 resident frames.
 * Every case but the reclaim scan also runs the model without CPU TLBs (`cpuTlbs: false`, every
 * access walks the page table, the model before TLBs), so the tables give the cost of the TLB
 * state as a ratio on / off.
 * `npm run bench:mm` (node --expose-gc). Options: `--reps 5`.
 *
 * One child process per timed case (`worker.ts`), so the cases never share JIT state or heap;
 * each child runs `reps` repetitions of the model with TLBs and without (alternating which goes
 * first), then the baseline, each on a fresh world after a full GC; every cell is the median
 * (the THP case's baseline, itself a model run, goes first on odd repetitions and last on even
 * ones).
 * The reclaim scan runs one child per machine size, the model once per repetition (no CPU TLB
 * is involved) then its baseline.
 * The heap is measured in two children, TLBs on and off. Tracing is off. Prints Markdown
 * tables and the targets.
 */

import { HPAGE_PMD_NR } from '../../src/mm/constants.ts';
import { CPU_TLB_ENTRIES } from '../../src/mm/tlb.ts';
import { arg, fmt, median, printTable, progressLog, workerRunner } from '../common.ts';
import type { HeapResult, ReclaimResult, SpeedResult, ThpResult } from './worker.ts';

const GIB = 1024 ** 3;
/** Machine sizes (frames) of the reclaim scan: the second 4× the first, to show it is linear. */
const RECLAIM_FRAMES = [50_000, 200_000] as const;
/** The larger machine's ns per page scanned may be at most this × the smaller one's. */
const RECLAIM_LINEAR = 2;

const reps = Number(arg('reps', '5'));
const child = workerRunner(new URL('./worker.ts', import.meta.url));
const log = progressLog();
const perSec = (ns: number) => (ns > 0 ? 1e9 / ns : 0);

log('anonymous first touch');
const anon = child<SpeedResult>(['anon', String(reps)]);
log('COW after fork');
const cow = child<SpeedResult>(['cow', String(reps)]);
log('mmap/munmap cycles');
const cyc = child<SpeedResult>(['mmap', String(reps)]);
log('THP first touch against small pages');
const thp = child<ThpResult>(['thp', String(reps)]);
const scans = RECLAIM_FRAMES.map((frames) => {
  log(`reclaim scan over an LRU of pinned pages, ${fmt(frames)} frames`);
  return child<ReclaimResult>(['reclaim', String(frames), String(reps)]);
});
log('heap of a 1,000,000-page address space, TLBs on');
const heap = child<HeapResult>(['heap', 'on']);
log('heap of a 1,000,000-page address space, TLBs off');
const heapOff = child<HeapResult>(['heap', 'off']);
log('done');

interface Row {
  what: string;
  model: number;
  off: number;
  bare: number;
  baseline: string;
  steps: number;
  stepsOff: number;
  unit: string;
}

const rows: Row[] = [
  {
    what: `anonymous first-touch fault (${fmt(anon.n)} pages)`,
    model: median(anon.model),
    off: median(anon.modelOff),
    bare: median(anon.bare),
    baseline: 'Map.set of a fresh entry + new 512-byte block + int write',
    steps: anon.steps,
    stepsOff: anon.stepsOff,
    unit: 'faults/s',
  },
  {
    what: 'CPU write to a present page (same pages, no fault; every write misses the TLB)',
    model: median(anon.hit!),
    off: median(anon.hitOff!),
    bare: median(anon.hitBare!),
    baseline: 'Map.get + int write',
    steps: 1,
    stepsOff: 1,
    unit: 'writes/s',
  },
  {
    what: `CPU write to a present page, ${CPU_TLB_ENTRIES} pages round-robin (TLB hits)`,
    model: median(anon.few!),
    off: median(anon.fewOff!),
    bare: median(anon.fewBare!),
    baseline: `Map.get + int write (${CPU_TLB_ENTRIES} keys)`,
    steps: 1,
    stepsOff: 1,
    unit: 'writes/s',
  },
  {
    what: `COW fault after fork (${fmt(cow.n)} pages, CLEAR invalidation each)`,
    model: median(cow.model),
    off: median(cow.modelOff),
    bare: median(cow.bare),
    baseline: 'Map.get + copy of a 512-byte block + int write + Map.set of a fresh entry',
    steps: cow.steps,
    stepsOff: cow.stepsOff,
    unit: 'faults/s',
  },
  {
    what: `mmap 1 page + touch + munmap (${fmt(cyc.n)} cycles)`,
    model: median(cyc.model),
    off: median(cyc.modelOff),
    bare: median(cyc.bare),
    baseline: 'VMA object spliced in/out of a sorted array + Map.set/delete + new block',
    steps: cyc.steps,
    stepsOff: cyc.stepsOff,
    unit: 'cycles/s',
  },
];

/** Steps per operation; both figures when the model without TLBs took a different number. */
const stepsCell = (r: Row) =>
  r.steps === r.stepsOff ? fmt(r.steps, 1) : `${fmt(r.steps, 1)} (off: ${fmt(r.stepsOff, 1)})`;

console.log(`# mm benchmark (node ${process.version}, median of ${reps}, tracing off)\n`);
console.log('rate, ns/op and ratio: the model as it runs by default, with CPU TLBs.\n');
printTable(
  [
    'measure',
    'rate',
    'ns/op',
    'steps/op',
    'bare baseline',
    'bare ns/op',
    'ratio',
    'ns/op TLBs off',
    'TLBs on / off',
  ],
  rows.map((r) => [
    r.what,
    `${fmt(perSec(r.model))} ${r.unit}`,
    fmt(r.model),
    stepsCell(r),
    r.baseline,
    fmt(r.bare),
    `${(r.model / r.bare).toFixed(1)}x`,
    fmt(r.off),
    `${(r.model / r.off).toFixed(2)}x`,
  ]),
);

// THP first touch: ns per page made present, against the model's small-page first touch.
const nsThp = median(thp.model);
const nsThpOff = median(thp.modelOff);
const nsThpSmall = median(thp.small);
const thpRatio = nsThp / nsThpSmall;
const thpMet = thpRatio < 1;
const thpSteps =
  thp.steps === thp.stepsOff
    ? fmt(thp.steps, 1)
    : `${fmt(thp.steps, 1)} (off: ${fmt(thp.stepsOff, 1)})`;
console.log();
printTable(
  [
    'THP first touch (MADV_HUGEPAGE)',
    'pages',
    'rate',
    'ns/page',
    'steps/THP fault',
    'baseline',
    'ns/page small pages',
    'ratio THP / small',
    'ns/page TLBs off',
    'TLBs on / off',
    'target',
  ],
  [
    [
      `one write per 2 MiB PMD, each fault maps a ${HPAGE_PMD_NR}-page THP (${fmt(thp.pmds)} PMDs)`,
      fmt(thp.pages),
      `${fmt(perSec(nsThp))} pages/s`,
      fmt(nsThp),
      thpSteps,
      `the model's small-page first touch of ${fmt(thp.pages)} pages, one write per page, no advice (${fmt(thp.smallSteps, 1)} steps/fault)`,
      fmt(nsThpSmall),
      `${thpRatio.toFixed(2)}x`,
      fmt(nsThpOff),
      `${(nsThp / nsThpOff).toFixed(2)}x`,
      `ratio < 1: ${thpMet ? 'met' : 'NOT met'}`,
    ],
  ],
);
console.log(
  `\nTHP first touch per page cheaper than small-page first touch (ratio < 1): ${thpRatio.toFixed(2)}x (${fmt(nsThp)} vs ${fmt(nsThpSmall)} ns/page): ${thpMet ? 'met' : 'NOT met'}`,
);

console.log();
printTable(
  [
    'address space',
    'CPU TLBs',
    'heapUsed',
    'arrayBuffers',
    'total',
    'bytes/resident page',
    'target',
  ],
  [heap, heapOff].map((h) => [
    `${fmt(h.pages)} pages mapped, ${fmt(h.resident)} resident (${fmt(h.frames)} frames, built in ${fmt(h.buildMs / 1000, 1)} s)`,
    h.tlbs ? `on (${fmt(h.tlbEntries)} entries cached)` : 'off',
    `${fmt(h.heapUsed / 2 ** 20)} MiB`,
    `${fmt(h.arrayBuffers / 2 ** 20)} MiB`,
    `${fmt(h.bytes / 2 ** 20)} MiB`,
    fmt(h.bytes / h.resident),
    `≤ 1 GiB: ${h.bytes <= GIB ? 'met' : 'NOT met'}`,
  ]),
);
const d = heap.bytes - heapOff.bytes;
console.log(
  `\nheap TLBs on / off: ${(heap.bytes / heapOff.bytes).toFixed(3)}x (${d >= 0 ? '+' : '-'}${fmt(Math.abs(d) / 1024)} KiB); build time ${(heap.buildMs / heapOff.buildMs).toFixed(2)}x`,
);
for (const h of [heap, heapOff])
  if (h.usedFrames !== h.resident)
    console.log(
      `\nwarning: ${h.usedFrames} frames in use for ${h.resident} resident pages (TLBs ${h.tlbs ? 'on' : 'off'})`,
    );

// The reclaim scan: ns per page scanned at each size, and the larger size's against the smaller.
const [small, large] = scans as [ReclaimResult, ReclaimResult];
const nsSmall = median(small.model);
const nsLarge = median(large.model);
const growth = nsLarge / nsSmall;
const bareGrowth = median(large.bare) / median(small.bare);
const linear = growth <= RECLAIM_LINEAR;
console.log();
printTable(
  [
    'reclaim scan (pinned LRU)',
    'rate',
    'ns/page',
    'steps/page',
    'bare baseline',
    'bare ns/page',
    'ratio',
    `ns/page vs ${fmt(small.frames)} frames`,
    'target',
  ],
  scans.map((r) => {
    const ns = median(r.model);
    const bare = median(r.bare);
    return [
      `one shrinkMemory(machine, 32) freeing nothing: ${fmt(r.frames)} frames, ${fmt(r.pinned)} long-term pinned anonymous pages on the LRU, ${fmt(r.n)} pages scanned (pinned in ${fmt(r.buildMs / 1000, 1)} s)`,
      `${fmt(perSec(ns))} pages scanned/s`,
      fmt(ns),
      fmt(r.steps, 1),
      `${fmt(r.n)} rotations of a Set of ${fmt(r.pinned)} objects through one live iterator: delete at the head + add at the tail`,
      fmt(bare),
      `${(ns / bare).toFixed(1)}x`,
      r === small ? '1.00x' : `${growth.toFixed(2)}x (bare ${bareGrowth.toFixed(2)}x)`,
      r === small
        ? 'reference'
        : `per-page rate within ${RECLAIM_LINEAR}x of ${fmt(small.frames)} frames' (linear scan): ${linear ? 'met' : 'NOT met'}`,
    ];
  }),
);
console.log(
  `\nreclaim scan: ${fmt(large.frames)} frames ${fmt(perSec(nsLarge))} pages/s, ${fmt(small.frames)} frames ${fmt(perSec(nsSmall))} pages/s; ns/page ${growth.toFixed(2)}x for ${fmt(large.frames / small.frames)}x the pages (target ≤ ${RECLAIM_LINEAR}x, linear): ${linear ? 'met' : 'NOT met'}`,
);
