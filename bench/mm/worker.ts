/**
 * One mm benchmark child process: `worker.ts <case> <reps>` measures one case and prints one
 * JSON line. Cases: `anon` (first-touch faults, then the same writes without a fault), `cow`
 * (COW faults after fork), `mmap` (mmap/touch/munmap cycles), `heap` (bytes of a 1,000,000-page
 * address space with 250,000 resident frames). Each timed case runs its bare baseline in the
 * same process. Needs `node --expose-gc`. Tracing is off (no subscriber).
 */

import { Kernel } from '../../src/kernel/kernel.ts';
import type { Co } from '../../src/kernel/task.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { fork } from '../../src/mm/fork.ts';
import { Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { munmap } from '../../src/mm/munmap.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const collect = gc;

/** Pages touched per repetition of the fault cases. */
const FAULT_PAGES = 100_000;
/** mmap/touch/munmap cycles per repetition. */
const MMAP_CYCLES = 20_000;
/** The heap case: pages mapped, and every STRIDE-th one written. */
const HEAP_PAGES = 1_000_000;
const HEAP_STRIDE = 4;
/** Frames of the heap case's machine: 1 GiB of simulated RAM, more than the 250,000 touched. */
const HEAP_FRAMES = 262_144;

const ANON = { prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS } as const;
const NO_LIMIT = Number.MAX_SAFE_INTEGER;

export interface SpeedResult {
  /** Operations per repetition. */
  n: number;
  /** ns per operation of the model, one per repetition. */
  model: number[];
  /** ns per operation of the bare baseline, one per repetition. */
  bare: number[];
  /** Kernel steps per operation (last repetition). */
  steps: number;
  /** For `anon`: ns per write to an already-present page, and its bare baseline. */
  hit?: number[];
  hitBare?: number[];
}

export interface HeapResult {
  pages: number;
  frames: number;
  bytes: number;
  heapUsed: number;
  arrayBuffers: number;
  resident: number;
  usedFrames: number;
  buildMs: number;
}

/** Runs `body` as the only task of a fresh world; throws unless the run is clean. */
function runWorld(frames: number, body: (m: Machine) => Co): { k: Kernel; m: Machine } {
  const k = new Kernel({ maxSteps: NO_LIMIT });
  const m = new Machine(k, { frames });
  k.spawn('bench', () => body(m));
  const r = k.run();
  if (!r.ok) throw new Error(`world failed: ${r.bug?.message}`);
  return { k, m };
}

function* mapAnon(mm: Mm, pages: number): Co<number> {
  return yield* mmap(mm, { len: pages * PAGE_SIZE, ...ANON });
}

function nsPer(t0: number, n: number): number {
  return ((performance.now() - t0) * 1e6) / n;
}

// ---- Bare baselines: the data-structure work of each operation, without the model. ----

/** A page-table entry as a bare loop would keep it. */
interface BarePte {
  frame: Uint8Array;
  writable: boolean;
  dirty: boolean;
  accessed: boolean;
}

/**
 * First touch, bare: a fresh entry object in a Map keyed by the same page numbers the model
 * uses, a fresh zeroed 512-byte block (the model's chunk size) and an int written into it.
 * The second pass (present page): a Map lookup and an int write.
 */
function bareAnon(vpn0: number, n: number): { fault: number; hit: number; table: unknown } {
  const pt = new Map<number, BarePte>();
  let t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const frame = new Uint8Array(512);
    frame[0] = i;
    frame[1] = i >>> 8;
    frame[2] = i >>> 16;
    frame[3] = i >>> 24;
    pt.set(vpn0 + i, { frame, writable: true, dirty: true, accessed: true });
  }
  const fault = nsPer(t0, n);
  t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const frame = pt.get(vpn0 + i)!.frame;
    frame[0] = i + 1;
    frame[1] = (i + 1) >>> 8;
    frame[2] = (i + 1) >>> 16;
    frame[3] = (i + 1) >>> 24;
  }
  return { fault, hit: nsPer(t0, n), table: pt };
}

/** COW, bare: copy the old 512-byte block, write the int, replace the entry with a fresh one. */
function bareCow(vpn0: number, n: number): number {
  const pt = new Map<number, BarePte>();
  for (let i = 0; i < n; i++) {
    const frame = new Uint8Array(512);
    frame[0] = i;
    pt.set(vpn0 + i, { frame, writable: false, dirty: true, accessed: true });
  }
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const frame = pt.get(vpn0 + i)!.frame.slice();
    frame[0] = i + 1;
    frame[1] = (i + 1) >>> 8;
    frame[2] = (i + 1) >>> 16;
    frame[3] = (i + 1) >>> 24;
    pt.set(vpn0 + i, { frame, writable: true, dirty: true, accessed: true });
  }
  return nsPer(t0, n);
}

/**
 * mmap cycle, bare: a VMA object spliced into a sorted array, an entry and a written block in
 * the page table, then both removed again.
 */
function bareMmap(vpn0: number, n: number): number {
  const vmas: { start: number; end: number; flags: number }[] = [
    { start: (vpn0 + 1) * PAGE_SIZE, end: (vpn0 + 2) * PAGE_SIZE, flags: 3 },
  ];
  const pt = new Map<number, BarePte>();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const vma = { start: vpn0 * PAGE_SIZE, end: (vpn0 + 1) * PAGE_SIZE, flags: 3 };
    vmas.splice(0, 0, vma);
    const frame = new Uint8Array(512);
    frame[0] = i;
    frame[1] = i >>> 8;
    frame[2] = i >>> 16;
    frame[3] = i >>> 24;
    pt.set(vpn0, { frame, writable: true, dirty: true, accessed: true });
    pt.delete(vpn0);
    vmas.splice(vmas.indexOf(vma), 1);
  }
  return nsPer(t0, n);
}

// ---- Model cases. ----

function anonOnce(): { fault: number; hit: number; steps: number; vpn0: number } {
  const n = FAULT_PAGES;
  let fault = 0;
  let hit = 0;
  let steps = 0;
  let vpn0 = 0;
  const { k } = runWorld(n + 16, function* (m) {
    const mm = m.createMm();
    const a = yield* mapAnon(mm, n);
    vpn0 = a / PAGE_SIZE;
    const s0 = m.kernel.steps;
    let t0 = performance.now();
    for (let i = 0; i < n; i++) yield* cpuWriteU32(mm, a + i * PAGE_SIZE, i);
    fault = nsPer(t0, n);
    steps = (m.kernel.steps - s0) / n;
    t0 = performance.now();
    for (let i = 0; i < n; i++) yield* cpuWriteU32(mm, a + i * PAGE_SIZE, i + 1);
    hit = nsPer(t0, n);
    if (m.phys.usedFrames !== n) throw new Error(`expected ${n} frames, ${m.phys.usedFrames}`);
  });
  void k;
  return { fault, hit, steps, vpn0 };
}

function cowOnce(): { cow: number; steps: number; vpn0: number } {
  const n = FAULT_PAGES;
  let cow = 0;
  let steps = 0;
  let vpn0 = 0;
  runWorld(2 * n + 16, function* (m) {
    const mm = m.createMm();
    const a = yield* mapAnon(mm, n);
    vpn0 = a / PAGE_SIZE;
    for (let i = 0; i < n; i++) yield* cpuWriteU32(mm, a + i * PAGE_SIZE, i);
    const child = yield* fork(mm);
    if (m.phys.usedFrames !== n) throw new Error('fork copied pages');
    const s0 = m.kernel.steps;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) yield* cpuWriteU32(mm, a + i * PAGE_SIZE, i + 1);
    cow = nsPer(t0, n);
    steps = (m.kernel.steps - s0) / n;
    if (m.phys.usedFrames !== 2 * n) throw new Error(`expected ${2 * n} frames after COW`);
    void child;
  });
  return { cow, steps, vpn0 };
}

function mmapOnce(): { cycle: number; steps: number; vpn0: number } {
  const n = MMAP_CYCLES;
  let cycle = 0;
  let steps = 0;
  let vpn0 = 0;
  runWorld(1024, function* (m) {
    const mm = m.createMm();
    const s0 = m.kernel.steps;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const a = yield* mapAnon(mm, 1);
      yield* cpuWriteU32(mm, a, i);
      yield* munmap(mm, a, PAGE_SIZE);
      vpn0 = a / PAGE_SIZE;
    }
    cycle = nsPer(t0, n);
    steps = (m.kernel.steps - s0) / n;
    if (m.phys.usedFrames !== 0 || mm.vmas.length !== 0) throw new Error('cycle leaked');
  });
  return { cycle, steps, vpn0 };
}

function speed(kind: 'anon' | 'cow' | 'mmap', reps: number): SpeedResult {
  const out: SpeedResult = {
    n: kind === 'mmap' ? MMAP_CYCLES : FAULT_PAGES,
    model: [],
    bare: [],
    steps: 0,
  };
  if (kind === 'anon') {
    out.hit = [];
    out.hitBare = [];
  }
  for (let r = 0; r < reps; r++) {
    collect();
    if (kind === 'anon') {
      const x = anonOnce();
      out.model.push(x.fault);
      out.hit!.push(x.hit);
      out.steps = x.steps;
      collect();
      const b = bareAnon(x.vpn0, FAULT_PAGES);
      out.bare.push(b.fault);
      out.hitBare!.push(b.hit);
    } else if (kind === 'cow') {
      const x = cowOnce();
      out.model.push(x.cow);
      out.steps = x.steps;
      collect();
      out.bare.push(bareCow(x.vpn0, FAULT_PAGES));
    } else {
      const x = mmapOnce();
      out.model.push(x.cycle);
      out.steps = x.steps;
      collect();
      out.bare.push(bareMmap(x.vpn0, MMAP_CYCLES));
    }
  }
  return out;
}

function heap(): HeapResult {
  const used = () => {
    collect();
    collect();
    const u = process.memoryUsage();
    return { heapUsed: u.heapUsed, arrayBuffers: u.arrayBuffers };
  };
  const before = used();
  const t0 = performance.now();
  let resident = 0;
  const world = runWorld(HEAP_FRAMES, function* (m) {
    const mm = m.createMm();
    const a = yield* mapAnon(mm, HEAP_PAGES);
    for (let i = 0; i < HEAP_PAGES; i += HEAP_STRIDE) yield* cpuWriteU32(mm, a + i * PAGE_SIZE, i);
    resident = mm.rss;
  });
  const buildMs = performance.now() - t0;
  const after = used();
  const usedFrames = world.m.phys.usedFrames;
  // Keeps the world reachable through the measurement.
  (globalThis as { keep?: unknown }).keep = world;
  const heapUsed = after.heapUsed - before.heapUsed;
  const arrayBuffers = after.arrayBuffers - before.arrayBuffers;
  return {
    pages: HEAP_PAGES,
    frames: HEAP_FRAMES,
    bytes: heapUsed + arrayBuffers,
    heapUsed,
    arrayBuffers,
    resident,
    usedFrames,
    buildMs,
  };
}

const kind = process.argv[2];
const reps = Number(process.argv[3] ?? '5');
if (kind === 'heap') console.log(JSON.stringify(heap()));
else if (kind === 'anon' || kind === 'cow' || kind === 'mmap')
  console.log(JSON.stringify(speed(kind, reps)));
else throw new Error(`unknown case ${kind}: expected anon, cow, mmap or heap`);
