/**
 * One mm benchmark child process: `worker.ts <case> <reps>` measures one case and prints one
 * JSON line. Cases: `anon` (first-touch faults, then the same writes without a fault, then as
 * many writes to the first 64 pages, which a TLB holds), `cow` (COW faults after fork), `mmap`
 * (mmap/touch/munmap cycles), `thp` (first-touch writes, one per 2 MiB PMD of a MADV_HUGEPAGE
 * region, each mapping a 512-page THP, timed per page made present; its baseline is the model's
 * small-page first touch of as many pages, and it throws unless every PMD became huge),
 * `reclaim <frames> <reps>` (one shrinkMemory() over an LRU of long-term pinned pages filling a
 * machine of that many frames), `heap <on|off>` (bytes of a 1,000,000-page address space with
 * 250,000 resident frames, with CPU TLBs or without). Each timed case runs the model with CPU
 * TLBs (the default), the model without (`cpuTlbs: false`, every access walks the page table)
 * and its bare baseline (for `thp` the small-page model, TLBs on), all in the same process;
 * `reclaim` runs the model only as built by default (no CPU TLB is involved).
 * Needs `node --expose-gc`. Tracing is off (no subscriber).
 */

import { Kernel } from '../../src/kernel/kernel.ts';
import type { Co } from '../../src/kernel/task.ts';
import {
  HPAGE_PMD_NR,
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { fork } from '../../src/mm/fork.ts';
import { getUserPages } from '../../src/mm/gup.ts';
import { Machine } from '../../src/mm/machine.ts';
import { madvise } from '../../src/mm/madvise.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { shrinkMemory } from '../../src/mm/reclaim.ts';
import { CPU_TLB_ENTRIES } from '../../src/mm/tlb.ts';
import { median } from '../common.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const collect = gc;

/** Pages touched per repetition of the fault cases. */
const FAULT_PAGES = 100_000;
/** PMDs the thp case faults in per repetition: 102,400 pages. */
const THP_PMDS = 200;
/** Frames of the thp case's machine beyond the pages it touches, so no THP falls back. */
const THP_SPARE = 1024;
/** mmap/touch/munmap cycles per repetition. */
const MMAP_CYCLES = 20_000;
/** The heap case: pages mapped, and every STRIDE-th one written. */
const HEAP_PAGES = 1_000_000;
const HEAP_STRIDE = 4;
/** Frames of the heap case's machine: 1 GiB of simulated RAM, more than the 250,000 touched. */
const HEAP_FRAMES = 262_144;
/** Frames of the reclaim case's machine left free (not pinned), as the fault cases leave 16. */
const RECLAIM_SLACK = 16;
/** The reclaim case's target: what direct reclaim asks for (Machine.allocPage). */
const RECLAIM_TARGET = 32;

const ANON = { prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS } as const;
const NO_LIMIT = Number.MAX_SAFE_INTEGER;

export interface SpeedResult {
  /** Operations per repetition. */
  n: number;
  /** ns per operation of the model (CPU TLBs on, the default), one per repetition. */
  model: number[];
  /** ns per operation of the model with `cpuTlbs: false`, one per repetition. */
  modelOff: number[];
  /** ns per operation of the bare baseline, one per repetition. */
  bare: number[];
  /** Kernel steps per operation (last repetition), TLBs on and off. */
  steps: number;
  stepsOff: number;
  /**
   * For `anon`: ns per write to an already-present page (TLBs on, off), and its bare baseline;
   * the pass covers all the pages, so every write misses a TLB.
   */
  hit?: number[];
  hitOff?: number[];
  hitBare?: number[];
  /** For `anon`: the same for writes cycling over the first CPU_TLB_ENTRIES pages (TLB hits). */
  few?: number[];
  fewOff?: number[];
  fewBare?: number[];
}

/**
 * The thp case, whose operation is one 4 KiB page made present: first-touch write faults in a
 * MADV_HUGEPAGE region (one write per PMD, each maps a 512-page THP), against the model's own
 * small-page first touch of as many pages (one write per page, no advice) as its baseline.
 */
export interface ThpResult {
  /** PMDs faulted in per repetition of the THP variant. */
  pmds: number;
  /** Pages made present per repetition, in both variants (pmds × HPAGE_PMD_NR). */
  pages: number;
  /** ns per page of the THP first touch (CPU TLBs on, the default), one per repetition. */
  model: number[];
  /** The same with `cpuTlbs: false`. */
  modelOff: number[];
  /** ns per page of the small-page first touch (CPU TLBs on), one per repetition: the baseline. */
  small: number[];
  /** Kernel steps per THP fault (one per PMD, last repetition), TLBs on and off. */
  steps: number;
  stepsOff: number;
  /** Kernel steps per small-page fault (last repetition). */
  smallSteps: number;
}

/**
 * The reclaim case, whose operation is one page scanned (taken off the LRU's head, found
 * pinned, rotated to its tail). One model variant only: GUP faults without a CPU access and the
 * scan never reaches a mapping, so no CPU TLB exists or is consulted either way.
 */
export interface ReclaimResult {
  /** Frames of the machine. */
  frames: number;
  /** Pinned anonymous pages on the LRU (every page on it). */
  pinned: number;
  /** Pages scanned by the one shrinkMemory() (2 × the LRU's size). */
  n: number;
  /** ns per page scanned of the model, one per repetition. */
  model: number[];
  /** ns per rotation of the bare baseline, one per repetition. */
  bare: number[];
  /** Kernel steps per page scanned (last repetition). */
  steps: number;
  /** ms to map, fault in and pin the pages (median). */
  buildMs: number;
}

export interface HeapResult {
  /** Whether the machine had CPU TLBs. */
  tlbs: boolean;
  /** TLB entries cached at the end (of every CPU TLB of the address space). */
  tlbEntries: number;
  pages: number;
  frames: number;
  bytes: number;
  heapUsed: number;
  arrayBuffers: number;
  resident: number;
  usedFrames: number;
  buildMs: number;
}

/**
 * Runs `body` as the only task of a fresh world whose machine has CPU TLBs or not (`tlbs`);
 * throws unless the run is clean.
 */
function runWorld(
  frames: number,
  tlbs: boolean,
  body: (m: Machine) => Co,
): { k: Kernel; m: Machine } {
  const k = new Kernel({ maxSteps: NO_LIMIT });
  const m = new Machine(k, { frames, cpuTlbs: tlbs });
  k.spawn('bench', () => body(m));
  const r = k.run();
  if (!r.ok) throw new Error(`world failed: ${r.bug?.message}`);
  return { k, m };
}

/** Throws unless `mm` has a CPU TLB exactly when its machine models them: the option took effect. */
function checkTlbs(mm: Mm, tlbs: boolean): void {
  if (tlbs !== mm.cpuTlbs.size > 0)
    throw new Error(`cpuTlbs ${tlbs} but ${mm.cpuTlbs.size} CPU TLBs made`);
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
 * The second pass (present page): a Map lookup and an int write; the third the same over the
 * first CPU_TLB_ENTRIES pages.
 */
function bareAnon(
  vpn0: number,
  n: number,
): { fault: number; hit: number; few: number; table: unknown } {
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
  const hit = nsPer(t0, n);
  t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const frame = pt.get(vpn0 + (i % CPU_TLB_ENTRIES))!.frame;
    frame[0] = i + 2;
    frame[1] = (i + 2) >>> 8;
    frame[2] = (i + 2) >>> 16;
    frame[3] = (i + 2) >>> 24;
  }
  return { fault, hit, few: nsPer(t0, n), table: pt };
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

/**
 * Reclaim scan, bare: a Set of `n` objects (as the LRU holds `n` pages), then `scans` rotations
 * through one live iterator: take the head, see it is pinned, delete it and add it at the tail.
 */
function bareReclaim(n: number, scans: number): number {
  const lru = new Set<{ pins: number }>();
  for (let i = 0; i < n; i++) lru.add({ pins: 1 });
  const t0 = performance.now();
  const head = lru.values();
  for (let s = 0; s < scans; s++) {
    const o = head.next().value;
    if (o === undefined) throw new Error('bare LRU ran dry');
    lru.delete(o);
    if (o.pins > 0) lru.add(o);
  }
  const ns = nsPer(t0, scans);
  if (lru.size !== n) throw new Error(`bare LRU lost entries: ${lru.size} of ${n}`);
  return ns;
}

// ---- Model cases. ----

function anonOnce(tlbs: boolean): {
  fault: number;
  hit: number;
  few: number;
  steps: number;
  vpn0: number;
} {
  const n = FAULT_PAGES;
  let fault = 0;
  let hit = 0;
  let few = 0;
  let steps = 0;
  let vpn0 = 0;
  runWorld(n + 16, tlbs, function* (m) {
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
    t0 = performance.now();
    for (let i = 0; i < n; i++)
      yield* cpuWriteU32(mm, a + (i % CPU_TLB_ENTRIES) * PAGE_SIZE, i + 2);
    few = nsPer(t0, n);
    if (m.phys.usedFrames !== n) throw new Error(`expected ${n} frames, ${m.phys.usedFrames}`);
    checkTlbs(mm, tlbs);
  });
  return { fault, hit, few, steps, vpn0 };
}

function cowOnce(tlbs: boolean): { cow: number; steps: number; vpn0: number } {
  const n = FAULT_PAGES;
  let cow = 0;
  let steps = 0;
  let vpn0 = 0;
  runWorld(2 * n + 16, tlbs, function* (m) {
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
    checkTlbs(mm, tlbs);
    void child;
  });
  return { cow, steps, vpn0 };
}

function mmapOnce(tlbs: boolean): { cycle: number; steps: number; vpn0: number } {
  const n = MMAP_CYCLES;
  let cycle = 0;
  let steps = 0;
  let vpn0 = 0;
  runWorld(1024, tlbs, function* (m) {
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

/**
 * The thp case's region: THP_PMDS + 1 PMDs of private anonymous memory, advised MADV_HUGEPAGE
 * when `huge`; returns its start rounded up to PMD_SIZE, below which THP_PMDS whole PMDs lie
 * inside the VMA.
 */
function* thpRegion(mm: Mm, huge: boolean): Co<number> {
  const len = (THP_PMDS + 1) * PMD_SIZE;
  const a = yield* mmap(mm, { len, ...ANON });
  if (huge) yield* madvise(mm, a, len, MADV_HUGEPAGE);
  return Math.ceil(a / PMD_SIZE) * PMD_SIZE;
}

/**
 * THP first touch: one write at the start of each of THP_PMDS PMDs of a MADV_HUGEPAGE region,
 * each a fault that maps a whole 512-page THP. Throws unless every PMD became huge, so a
 * fallback to small pages is never what gets measured. Returns ns and steps per page.
 */
function thpOnce(tlbs: boolean): { ns: number; steps: number } {
  const n = THP_PMDS * HPAGE_PMD_NR;
  let ns = 0;
  let steps = 0;
  runWorld(n + THP_SPARE, tlbs, function* (m) {
    const mm = m.createMm();
    const h = yield* thpRegion(mm, true);
    const s0 = m.kernel.steps;
    const t0 = performance.now();
    for (let i = 0; i < THP_PMDS; i++) yield* cpuWriteU32(mm, h + i * PMD_SIZE, i);
    ns = nsPer(t0, n);
    steps = (m.kernel.steps - s0) / THP_PMDS;
    for (let i = 0; i < THP_PMDS; i++)
      if (!mm.pmdHuge(h + i * PMD_SIZE)) throw new Error(`PMD ${i} fell back to small pages`);
    if (m.phys.usedFrames !== n || mm.rss !== n)
      throw new Error(`expected ${n} pages, ${m.phys.usedFrames} frames used, rss ${mm.rss}`);
    checkTlbs(mm, tlbs);
  });
  return { ns, steps };
}

/**
 * The thp case's baseline: the model's small-page first touch of as many pages, one write per
 * page of the same region without MADV_HUGEPAGE, on a machine of the same size (TLBs on).
 */
function thpSmallOnce(): { ns: number; steps: number } {
  const n = THP_PMDS * HPAGE_PMD_NR;
  let ns = 0;
  let steps = 0;
  runWorld(n + THP_SPARE, true, function* (m) {
    const mm = m.createMm();
    const h = yield* thpRegion(mm, false);
    const s0 = m.kernel.steps;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) yield* cpuWriteU32(mm, h + i * PAGE_SIZE, i);
    ns = nsPer(t0, n);
    steps = (m.kernel.steps - s0) / n;
    if (mm.hugePmds.size !== 0) throw new Error('the small-page region got a THP');
    if (m.phys.usedFrames !== n) throw new Error(`expected ${n} frames, ${m.phys.usedFrames}`);
  });
  return { ns, steps };
}

/**
 * A machine of `frames` frames, all but RECLAIM_SLACK held by anonymous pages faulted in and
 * long-term pinned by getUserPages (FOLL_LONGTERM|FOLL_WRITE, as ib_umem_get pins an MR), then
 * one timed shrinkMemory(machine, 32): every page is pinned, so it frees nothing and looks at
 * every page of the LRU twice (2 × its size, the scan's limit), rotating each to the tail.
 */
function reclaimOnce(frames: number): {
  scan: number;
  scanned: number;
  pinned: number;
  steps: number;
  buildMs: number;
} {
  const n = frames - RECLAIM_SLACK;
  let scan = 0;
  let scanned = 0;
  let steps = 0;
  let buildMs = 0;
  runWorld(frames, true, function* (m) {
    const mm = m.createMm();
    const t0 = performance.now();
    const a = yield* mapAnon(mm, n);
    yield* mm.mmapLock.downRead();
    try {
      yield* getUserPages(mm, a, n, { write: true, longterm: true });
    } finally {
      mm.mmapLock.upRead();
    }
    buildMs = performance.now() - t0;
    const lru = m.phys.lru;
    if (lru.size !== n || m.phys.usedFrames !== n)
      throw new Error(`expected ${n} pages on the LRU, ${lru.size} (${m.phys.usedFrames} used)`);
    for (const p of lru) if (p.pins !== 1) throw new Error(`pfn ${p.pfn} has ${p.pins} pins`);
    const first = lru.values().next().value;
    scanned = 2 * lru.size;
    collect();
    const s0 = m.kernel.steps;
    const t1 = performance.now();
    const freed = yield* shrinkMemory(m, RECLAIM_TARGET);
    scan = nsPer(t1, scanned);
    steps = (m.kernel.steps - s0) / scanned;
    // Two full rotations leave the LRU as it was: every page was taken off and put back twice.
    if (freed !== 0 || lru.size !== n || m.phys.usedFrames !== n)
      throw new Error(`the scan freed ${freed} frames, LRU ${lru.size} of ${n}`);
    if (lru.values().next().value !== first)
      throw new Error('the scan did not rotate the LRU twice');
  });
  return { scan, scanned, pinned: n, steps, buildMs };
}

/**
 * One repetition of the model, TLBs on then off or off then on (`offFirst`), so that neither
 * variant always runs on the colder JIT; a full GC before each.
 */
function both<T>(once: (tlbs: boolean) => T, offFirst: boolean): { on: T; off: T } {
  collect();
  const first = once(!offFirst);
  collect();
  const second = once(offFirst);
  return offFirst ? { on: second, off: first } : { on: first, off: second };
}

function speed(kind: 'anon' | 'cow' | 'mmap', reps: number): SpeedResult {
  const out: SpeedResult = {
    n: kind === 'mmap' ? MMAP_CYCLES : FAULT_PAGES,
    model: [],
    modelOff: [],
    bare: [],
    steps: 0,
    stepsOff: 0,
  };
  if (kind === 'anon') {
    out.hit = [];
    out.hitOff = [];
    out.hitBare = [];
    out.few = [];
    out.fewOff = [];
    out.fewBare = [];
  }
  for (let r = 0; r < reps; r++) {
    const offFirst = r % 2 === 1;
    if (kind === 'anon') {
      const x = both(anonOnce, offFirst);
      out.model.push(x.on.fault);
      out.modelOff.push(x.off.fault);
      out.hit!.push(x.on.hit);
      out.hitOff!.push(x.off.hit);
      out.few!.push(x.on.few);
      out.fewOff!.push(x.off.few);
      out.steps = x.on.steps;
      out.stepsOff = x.off.steps;
      collect();
      const b = bareAnon(x.on.vpn0, FAULT_PAGES);
      out.bare.push(b.fault);
      out.hitBare!.push(b.hit);
      out.fewBare!.push(b.few);
    } else if (kind === 'cow') {
      const x = both(cowOnce, offFirst);
      out.model.push(x.on.cow);
      out.modelOff.push(x.off.cow);
      out.steps = x.on.steps;
      out.stepsOff = x.off.steps;
      collect();
      out.bare.push(bareCow(x.on.vpn0, FAULT_PAGES));
    } else {
      const x = both(mmapOnce, offFirst);
      out.model.push(x.on.cycle);
      out.modelOff.push(x.off.cycle);
      out.steps = x.on.steps;
      out.stepsOff = x.off.steps;
      collect();
      out.bare.push(bareMmap(x.on.vpn0, MMAP_CYCLES));
    }
  }
  return out;
}

/**
 * The thp case: each repetition runs the THP first touch with TLBs and without (both()) and the
 * small-page baseline, a full GC and a fresh world before each; the baseline goes last on even
 * repetitions and first on odd ones, so it neither always runs on the warmest JIT nor always on
 * the coldest.
 */
function thp(reps: number): ThpResult {
  const out: ThpResult = {
    pmds: THP_PMDS,
    pages: THP_PMDS * HPAGE_PMD_NR,
    model: [],
    modelOff: [],
    small: [],
    steps: 0,
    stepsOff: 0,
    smallSteps: 0,
  };
  const small = () => {
    collect();
    const b = thpSmallOnce();
    out.small.push(b.ns);
    out.smallSteps = b.steps;
  };
  for (let r = 0; r < reps; r++) {
    const offFirst = r % 2 === 1;
    if (offFirst) small();
    const x = both(thpOnce, offFirst);
    out.model.push(x.on.ns);
    out.modelOff.push(x.off.ns);
    out.steps = x.on.steps;
    out.stepsOff = x.off.steps;
    if (!offFirst) small();
  }
  return out;
}

function reclaim(frames: number, reps: number): ReclaimResult {
  const out: ReclaimResult = { frames, pinned: 0, n: 0, model: [], bare: [], steps: 0, buildMs: 0 };
  const builds: number[] = [];
  for (let r = 0; r < reps; r++) {
    collect();
    const x = reclaimOnce(frames);
    out.model.push(x.scan);
    out.steps = x.steps;
    out.n = x.scanned;
    out.pinned = x.pinned;
    builds.push(x.buildMs);
    collect();
    out.bare.push(bareReclaim(x.pinned, x.scanned));
  }
  out.buildMs = median(builds);
  return out;
}

function heap(tlbs: boolean): HeapResult {
  const used = () => {
    collect();
    collect();
    const u = process.memoryUsage();
    return { heapUsed: u.heapUsed, arrayBuffers: u.arrayBuffers };
  };
  const before = used();
  const t0 = performance.now();
  let resident = 0;
  let tlbEntries = 0;
  const world = runWorld(HEAP_FRAMES, tlbs, function* (m) {
    const mm = m.createMm();
    const a = yield* mapAnon(mm, HEAP_PAGES);
    for (let i = 0; i < HEAP_PAGES; i += HEAP_STRIDE) yield* cpuWriteU32(mm, a + i * PAGE_SIZE, i);
    resident = mm.rss;
    checkTlbs(mm, tlbs);
    for (const t of mm.cpuTlbs.values()) tlbEntries += t.size;
  });
  const buildMs = performance.now() - t0;
  const after = used();
  const usedFrames = world.m.phys.usedFrames;
  // Keeps the world reachable through the measurement.
  (globalThis as { keep?: unknown }).keep = world;
  const heapUsed = after.heapUsed - before.heapUsed;
  const arrayBuffers = after.arrayBuffers - before.arrayBuffers;
  return {
    tlbs,
    tlbEntries,
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
if (kind === 'heap') {
  const mode = process.argv[3] ?? 'on';
  if (mode !== 'on' && mode !== 'off') throw new Error(`heap ${mode}: expected on or off`);
  console.log(JSON.stringify(heap(mode === 'on')));
} else if (kind === 'reclaim') {
  const frames = Number(process.argv[3]);
  if (!Number.isSafeInteger(frames) || frames <= RECLAIM_SLACK)
    throw new Error(`reclaim ${process.argv[3]}: expected a frame count above ${RECLAIM_SLACK}`);
  console.log(JSON.stringify(reclaim(frames, Number(process.argv[4] ?? '5'))));
} else if (kind === 'thp') console.log(JSON.stringify(thp(Number(process.argv[3] ?? '5'))));
else if (kind === 'anon' || kind === 'cow' || kind === 'mmap')
  console.log(JSON.stringify(speed(kind, Number(process.argv[3] ?? '5'))));
else throw new Error(`unknown case ${kind}: expected anon, cow, mmap, thp, reclaim or heap`);
