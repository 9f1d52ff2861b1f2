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

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HeapResult, SpeedResult } from './worker.ts';

const GIB = 1024 ** 3;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

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
console.log('| measure | rate | ns/op | steps/op | bare baseline | bare ns/op | ratio |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.what} | ${fmt(perSec(r.model))} ${r.unit} | ${fmt(r.model)} | ${fmt(r.steps, 1)} | ${r.baseline} | ${fmt(r.bare)} | ${(r.model / r.bare).toFixed(1)}x |`,
  );
}

const perPage = heap.bytes / heap.resident;
const met = heap.bytes <= GIB;
console.log('\n| address space | heapUsed | arrayBuffers | total | bytes/resident page | target |');
console.log('|---|---|---|---|---|---|');
console.log(
  `| ${fmt(heap.pages)} pages mapped, ${fmt(heap.resident)} resident (${fmt(heap.frames)} frames, built in ${fmt(heap.buildMs / 1000, 1)} s) | ${fmt(heap.heapUsed / 2 ** 20)} MiB | ${fmt(heap.arrayBuffers / 2 ** 20)} MiB | ${fmt(heap.bytes / 2 ** 20)} MiB | ${fmt(perPage)} | ≤ 1 GiB: ${met ? 'met' : 'NOT met'} |`,
);
if (heap.usedFrames !== heap.resident)
  console.log(`\nwarning: ${heap.usedFrames} frames in use for ${heap.resident} resident pages`);
