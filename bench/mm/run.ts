/**
 * mm benchmark: CPU fault throughput (anonymous first touch, COW after fork), mmap/touch/munmap
 * cycles, each against a bare JS loop doing the same data-structure work in the same process,
 * and the heap of a 1,000,000-page address space with 250,000 resident frames. Every case also
 * runs the model without CPU TLBs (`cpuTlbs: false`, every access walks the page table, the
 * model before TLBs), so the tables give the cost of the TLB state as a ratio on / off.
 * `npm run bench:mm` (node --expose-gc). Options: `--reps 5`.
 *
 * One child process per timed case (`worker.ts`), so the cases never share JIT state or heap;
 * each child runs `reps` repetitions of the model with TLBs and without (alternating which goes
 * first), then the baseline, each on a fresh world after a full GC; every cell is the median.
 * The heap is measured in two children, TLBs on and off. Tracing is off. Prints Markdown
 * tables and the targets.
 */

import { CPU_TLB_ENTRIES } from '../../src/mm/tlb.ts';
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
