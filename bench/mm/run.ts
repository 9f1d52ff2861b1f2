/**
 * mm benchmark: CPU fault throughput (anonymous first touch, COW after fork), mmap/touch/munmap
 * cycles, each against a bare JS loop doing the same data-structure work in the same process,
 * and the heap of a 1,000,000-page address space with 250,000 resident frames.
 * `npm run bench:mm` (node --expose-gc). Options: `--reps 5`.
 *
 * One child process per case (`worker.ts`), so the cases never share JIT state or heap; each
 * child runs `reps` repetitions, model then baseline, each on a fresh world after a full GC;
 * every cell is the median. Tracing is off. Prints Markdown tables and the targets.
 */

import { arg, fmt, median, printTable, progressLog, workerRunner } from '../common.ts';
import type { HeapResult, SpeedResult } from './worker.ts';

const GIB = 1024 ** 3;

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
log('heap of a 1,000,000-page address space');
const heap = child<HeapResult>(['heap']);
log('done');

interface Row {
  what: string;
  model: number;
  bare: number;
  baseline: string;
  steps: number;
  unit: string;
}

const rows: Row[] = [
  {
    what: `anonymous first-touch fault (${fmt(anon.n)} pages)`,
    model: median(anon.model),
    bare: median(anon.bare),
    baseline: 'Map.set of a fresh entry + new 512-byte block + int write',
    steps: anon.steps,
    unit: 'faults/s',
  },
  {
    what: 'CPU write to a present page (same pages, no fault)',
    model: median(anon.hit!),
    bare: median(anon.hitBare!),
    baseline: 'Map.get + int write',
    steps: 1,
    unit: 'writes/s',
  },
  {
    what: `COW fault after fork (${fmt(cow.n)} pages, CLEAR invalidation each)`,
    model: median(cow.model),
    bare: median(cow.bare),
    baseline: 'Map.get + copy of a 512-byte block + int write + Map.set of a fresh entry',
    steps: cow.steps,
    unit: 'faults/s',
  },
  {
    what: `mmap 1 page + touch + munmap (${fmt(cyc.n)} cycles)`,
    model: median(cyc.model),
    bare: median(cyc.bare),
    baseline: 'VMA object spliced in/out of a sorted array + Map.set/delete + new block',
    steps: cyc.steps,
    unit: 'cycles/s',
  },
];

console.log(`# mm benchmark (node ${process.version}, median of ${reps}, tracing off)\n`);
printTable(
  ['measure', 'rate', 'ns/op', 'steps/op', 'bare baseline', 'bare ns/op', 'ratio'],
  rows.map((r) => [
    r.what,
    `${fmt(perSec(r.model))} ${r.unit}`,
    fmt(r.model),
    fmt(r.steps, 1),
    r.baseline,
    fmt(r.bare),
    `${(r.model / r.bare).toFixed(1)}x`,
  ]),
);

const perPage = heap.bytes / heap.resident;
const met = heap.bytes <= GIB;
console.log();
printTable(
  ['address space', 'heapUsed', 'arrayBuffers', 'total', 'bytes/resident page', 'target'],
  [
    [
      `${fmt(heap.pages)} pages mapped, ${fmt(heap.resident)} resident (${fmt(heap.frames)} frames, built in ${fmt(heap.buildMs / 1000, 1)} s)`,
      `${fmt(heap.heapUsed / 2 ** 20)} MiB`,
      `${fmt(heap.arrayBuffers / 2 ** 20)} MiB`,
      `${fmt(heap.bytes / 2 ** 20)} MiB`,
      fmt(perPage),
      `≤ 1 GiB: ${met ? 'met' : 'NOT met'}`,
    ],
  ],
);
if (heap.usedFrames !== heap.resident)
  console.log(`\nwarning: ${heap.usedFrames} frames in use for ${heap.resident} resident pages`);
