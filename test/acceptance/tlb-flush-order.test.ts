// When each mm path frees the pages it unmaps, relative to the CPU TLB flush and the
// secondary-TLB hook: one test per row of the modern-kernel table (spec mm-paths.md §3) that
// the model implements. In every world a CPU thread holds cached translations of the pages when
// the operation runs, and a classic MMU notifier with an arch_invalidate_secondary_tlbs hook is
// registered; the test records the trace (and the hook calls, which emit no event of their
// own) in one ordered log and checks where each 'page-free' of a frame the mm mapped falls:
// after the 'pte-clear' of its entry, the 'tlb-flush' and the hook call covering its address,
// and the notifier's mmu-start/mmu-end, as the row's "old page freed" column says. Rows that
// free nothing (mprotect, mremap, fork) check that no page is freed and that the flush of the
// changed entries happens before the call returns.
//
// Not modelled, so not tested: THP __split_huge_pmd and collapse, hugetlb unmap and
// hugetlb_wp, migrate_vma (device), make_device_exclusive, page_mkclean, KSM write_protect and
// replace. zap_vma_ptes() shares MADV_DONTNEED's path (zapRange) and frees no struct page.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { type Co, isErrno, Kernel } from '../../src/index.ts';
import { join } from '../../src/kernel/context.ts';
import { Completion } from '../../src/kernel/sync/completion.ts';
import type { TraceEvent, TraceEventOf } from '../../src/kernel/trace.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { fork } from '../../src/mm/fork.ts';
import { Machine } from '../../src/mm/machine.ts';
import { madvise } from '../../src/mm/madvise.ts';
import { migratePage } from '../../src/mm/migrate.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmdrop, mmgrab } from '../../src/mm/mm-refs.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mmuNotifierRegister, mmuNotifierUnregister } from '../../src/mm/mmu-notifier-register.ts';
import { MmuNotifier, type MmuNotifierOps } from '../../src/mm/mmu-notifier-types.ts';
import { mprotect } from '../../src/mm/mprotect.ts';
import { mremap } from '../../src/mm/mremap.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { oomReap } from '../../src/mm/oom-reaper.ts';
import { shrinkMemory } from '../../src/mm/reclaim.ts';
import { CPU_TLB_ENTRIES, GATHER_BATCH } from '../../src/mm/tlb.ts';

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** A call of the secondary-TLB hook (it emits no trace event, so the test logs it). */
interface HookCall {
  readonly type: 'hook';
  readonly mm: number;
  readonly start: number;
  readonly end: number;
}

/** A point the world marks: the operation under test is called, or has returned. */
interface Mark {
  readonly type: 'call' | 'return' | 'release-op';
}

type Entry = TraceEvent | HookCall | Mark;

/** A frame an address of the mm mapped before the operation. */
interface Frame {
  readonly addr: number;
  readonly pfn: number;
  readonly gen: number;
}

interface World {
  readonly k: Kernel;
  readonly m: Machine;
  readonly mm: Mm;
  readonly log: Entry[];
}

/** Builds a world (oracles installed, every event logged in order), runs it to the end. */
function runWorld(frames: number, build: (w: World) => void) {
  const k = new Kernel();
  const log: Entry[] = [];
  k.trace.subscribe((e) => {
    log.push({ ...e });
  });
  const m = new Machine(k, { frames });
  installOracles(k, m);
  const mm = m.createMm();
  build({ k, m, mm, log });
  const r = k.run();
  return { ...r, timeline: new Timeline(log), mm };
}

/** Registers a classic notifier on `mm` whose secondary-TLB hook logs each call. */
function* hooked(mm: Mm, log: Entry[], ops: MmuNotifierOps = {}): Co<MmuNotifier> {
  const sub = new MmuNotifier({
    ...ops,
    archInvalidateSecondaryTlbs(_sub, on, start, end) {
      log.push({ type: 'hook', mm: on.id, start, end });
    },
  });
  yield* mmuNotifierRegister(sub, mm);
  return sub;
}

/** The process exits, then the driver unregisters (dropping the mm_count its registration took). */
function* exitAndUnregister(mm: Mm, sub: MmuNotifier): Co {
  yield* mmput(mm);
  yield* mmuNotifierUnregister(sub, mm);
}

/** Maps `n` private anonymous pages and writes each (value i + 1): every write fills the TLB. */
function* populate(mm: Mm, n: number): Co<{ base: number; frames: Frame[] }> {
  const base = yield* mmap(mm, { len: n * P, prot: RW, flags: ANON });
  for (let i = 0; i < n; i++) yield* cpuWriteU32(mm, base + i * P, i + 1);
  return { base, frames: framesAt(mm, base, n) };
}

function framesAt(mm: Mm, base: number, n: number): Frame[] {
  const out: Frame[] = [];
  for (let i = 0; i < n; i++) {
    const page = mm.pte(base + i * P)?.page;
    assert.ok(page !== null && page !== undefined, `page ${i} is mapped`);
    out.push({ addr: base + i * P, pfn: page.pfn, gen: page.gen });
  }
  return out;
}

/** True when some CPU TLB of `mm` caches `f`'s translation. */
function cached(mm: Mm, f: Frame): boolean {
  for (const tlb of mm.cpuTlbs.values()) {
    const t = tlb.lookup(f.addr);
    if (t !== undefined && t.pfn === f.pfn && t.gen === f.gen) return true;
  }
  return false;
}

function assertAllCached(mm: Mm, frames: readonly Frame[]): void {
  for (const f of frames) assert.ok(cached(mm, f), `a CPU TLB caches 0x${f.addr.toString(16)}`);
}

/**
 * The usual world: one CPU thread hooks the secondary-TLB flush, populates `pages` pages,
 * checks what its TLB holds (`cachedCheck`), runs `call` between the 'call' and 'return'
 * marks, then `after` (what the CPU sees once it returned), and exits. Returns the run with
 * the populated pages' frames.
 */
function aroundCall(
  pages: number,
  call: (mm: Mm, base: number) => Co,
  after: (mm: Mm, base: number, frames: readonly Frame[]) => Co = function* () {},
  cachedCheck: (mm: Mm, frames: readonly Frame[]) => void = assertAllCached,
) {
  let frames: Frame[] = [];
  const r = runWorld(pages + 16, ({ k, mm, log }) => {
    k.spawn('cpu', function* () {
      const sub = yield* hooked(mm, log);
      const p = yield* populate(mm, pages);
      frames = p.frames;
      cachedCheck(mm, frames);
      log.push({ type: 'call' });
      yield* call(mm, p.base);
      log.push({ type: 'return' });
      yield* after(mm, p.base, frames);
      yield* exitAndUnregister(mm, sub);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  return { ...r, frames };
}

const covers = (e: { start: number; end: number }, addr: number) => e.start <= addr && addr < e.end;

/** Positions in the ordered log of the events the rows talk about. */
class Timeline {
  readonly log: readonly Entry[];

  constructor(log: readonly Entry[]) {
    this.log = log;
  }

  /** The first entry at or after `from` that `pred` accepts, or -1. */
  find(pred: (e: Entry) => boolean, from = 0): number {
    for (let i = Math.max(0, from); i < this.log.length; i++) if (pred(this.log[i]!)) return i;
    return -1;
  }

  count(pred: (e: Entry) => boolean, from: number, to: number): number {
    let n = 0;
    for (let i = Math.max(0, from); i < Math.min(to, this.log.length); i++)
      if (pred(this.log[i]!)) n++;
    return n;
  }

  mark(type: Mark['type']): number {
    return this.find((e) => e.type === type);
  }

  free(f: Frame): number {
    return this.find((e) => e.type === 'page-free' && e.pfn === f.pfn && e.gen === f.gen);
  }

  frees(f: Frame): number {
    return this.count(
      (e) => e.type === 'page-free' && e.pfn === f.pfn && e.gen === f.gen,
      0,
      this.log.length,
    );
  }

  clear(mm: Mm, f: Frame, from = 0): number {
    return this.find(
      (e) =>
        e.type === 'pte-clear' &&
        e.mm === mm.id &&
        e.addr === f.addr &&
        e.pfn === f.pfn &&
        e.gen === f.gen,
      from,
    );
  }

  /** The entry at `addr` set to (or left at) these rights. */
  set(mm: Mm, addr: number, from: number, pred: (e: TraceEventOf<'pte-set'>) => boolean): number {
    return this.find(
      (e) => e.type === 'pte-set' && e.mm === mm.id && e.addr === addr && pred(e),
      from,
    );
  }

  /** The first CPU TLB flush of `mm` covering `addr` after `from`. */
  flush(mm: Mm, addr: number, from: number): number {
    return this.find((e) => e.type === 'tlb-flush' && e.mm === mm.id && covers(e, addr), from);
  }

  /** The first secondary-TLB hook call for `mm` covering `addr` after `from`. */
  hook(mm: Mm, addr: number, from: number): number {
    return this.find((e) => e.type === 'hook' && e.mm === mm.id && covers(e, addr), from);
  }

  /** The first mmu-start of `event` on `mm` covering `addr` after `from`, and its mmu-end. */
  range(mm: Mm, addr: number, event: string, from = 0): { start: number; end: number } {
    const start = this.find(
      (e) => e.type === 'mmu-start' && e.mm === mm.id && e.event === event && covers(e, addr),
      from,
    );
    const startEvent = this.log[start];
    assert.ok(startEvent?.type === 'mmu-start', `an mmu-start ${event} covers ${addr}`);
    const end = this.find((e) => e.type === 'mmu-end' && e.id === startEvent.id, start);
    return { start, end };
  }

  unlock(lock: string, from: number): number {
    return this.find((e) => e.type === 'lock-release' && e.lock === lock, from);
  }
}

/** Asserts the named positions are all found and strictly increasing. */
function inOrder(what: string, steps: readonly (readonly [string, number])[]): void {
  const text = steps.map(([n, i]) => `${n}@${i}`).join(' < ');
  for (const [name, i] of steps) assert.ok(i >= 0, `${what}: no ${name} (${text})`);
  for (let j = 1; j < steps.length; j++)
    assert.ok(steps[j - 1]![1] < steps[j]![1], `${what}: expected ${text}`);
}

/**
 * The gather rows' common check: the entry was cleared inside the notifier range, then a CPU
 * flush and a hook call covering it, then the free; returns the positions.
 */
function gatherOrder(t: Timeline, mm: Mm, f: Frame, event: string, from: number) {
  const range = t.range(mm, f.addr, event, from);
  const clear = t.clear(mm, f, range.start);
  const flush = t.flush(mm, f.addr, clear);
  const hook = t.hook(mm, f.addr, clear);
  const free = t.free(f);
  const what = `0x${f.addr.toString(16)}`;
  inOrder(what, [
    ['mmu-start', range.start],
    ['pte-clear', clear],
    ['tlb-flush', flush],
    ['hook', hook],
    ['page-free', free],
  ]);
  assert.equal(t.frees(f), 1, `${what} is freed once`);
  return { ...range, clear, flush, hook, free };
}

test('munmap (unmap_vmas, UNMAP): each page is freed by the gather after the CPU flush and the hook; the last batch at tlb_finish_mmu, after the end', () => {
  const r = aroundCall(
    3,
    (mm, base) => munmap(mm, base, 3 * P),
    function* (mm, _base, frames) {
      for (const f of frames) assert.ok(!cached(mm, f), 'no TLB reaches an unmapped page');
    },
  );
  const t = r.timeline;
  for (const f of r.frames) {
    const o = gatherOrder(t, r.mm, f, 'UNMAP', t.mark('call'));
    inOrder('munmap', [
      ['mmu-end', o.end],
      ['page-free', o.free],
      ['return', t.mark('return')],
    ]);
  }
});

test(`munmap with more than ${GATHER_BATCH} pages: a full gather flushes and frees mid-walk, between start and end, still after the flush and the hook`, () => {
  const n = GATHER_BATCH + 2;
  const r = aroundCall(
    n,
    (mm, base) => munmap(mm, base, n * P),
    undefined,
    // The TLB holds the last CPU_TLB_ENTRIES pages written.
    (mm, frames) => assert.equal(frames.filter((f) => cached(mm, f)).length, CPU_TLB_ENTRIES),
  );
  const t = r.timeline;
  r.frames.forEach((f, i) => {
    const o = gatherOrder(t, r.mm, f, 'UNMAP', t.mark('call'));
    if (i < GATHER_BATCH)
      inOrder(`mid-walk page ${i}`, [
        ['page-free', o.free],
        ['mmu-end', o.end],
      ]);
    else
      inOrder(`last-batch page ${i}`, [
        ['mmu-end', o.end],
        ['page-free', o.free],
      ]);
  });
});

test('exit_mmap: release() first (the notifier is unhooked), then the UNMAP zap frees at tlb_finish_mmu, after the CPU flush and the end', () => {
  let frames: Frame[] = [];
  const r = runWorld(16, ({ k, mm, log }) => {
    k.spawn('cpu', function* () {
      const sub = yield* hooked(mm, log, {
        *release() {
          log.push({ type: 'release-op' });
        },
      });
      const p = yield* populate(mm, 3);
      frames = p.frames;
      assertAllCached(mm, frames);
      log.push({ type: 'call' });
      yield* mmput(mm);
      log.push({ type: 'return' });
      yield* mmuNotifierUnregister(sub, mm);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  const t = r.timeline;
  const release = t.mark('release-op');
  const releaseEvent = t.find((e) => e.type === 'mmu-release');
  for (const f of frames) {
    const o = t.range(r.mm, f.addr, 'UNMAP', t.mark('call'));
    const clear = t.clear(r.mm, f, o.start);
    const flush = t.flush(r.mm, f.addr, clear);
    const free = t.free(f);
    inOrder('exit_mmap', [
      ['mmu-release', releaseEvent],
      ['->release', release],
      ['mmu-start', o.start],
      ['pte-clear', clear],
      ['mmu-end', o.end],
      ['tlb-flush', flush],
      ['page-free', free],
      ['return', t.mark('return')],
    ]);
    assert.equal(t.frees(f), 1);
  }
  // After ->release the subscriber is unlinked: the exit flush reaches no hook.
  assert.equal(
    t.count((e) => e.type === 'hook', release, t.log.length),
    0,
    'no hook call after release',
  );
});

test('OOM reaper: a non-blockable UNMAP, pages freed by the gather after the CPU flush, the hook and the end', () => {
  let frames: Frame[] = [];
  const r = runWorld(16, ({ k, mm, log }) => {
    const ready = new Completion('ready');
    const reaped = new Completion('reaped');
    k.spawn('victim', function* () {
      const sub = yield* hooked(mm, log);
      frames = (yield* populate(mm, 3)).frames;
      ready.completeAll();
      yield* reaped.wait();
      yield* exitAndUnregister(mm, sub);
    });
    k.spawn('oom_reaper', function* () {
      yield* ready.wait();
      assertAllCached(mm, frames);
      mmgrab(mm);
      log.push({ type: 'call' });
      const res = yield* oomReap(mm);
      log.push({ type: 'return' });
      mmdrop(mm);
      assert.deepEqual(res, { reaped: 1, skipped: 0, contended: false });
      for (const f of frames) assert.ok(!cached(mm, f), 'the victim CPU was shot down');
      reaped.completeAll();
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  const t = r.timeline;
  for (const f of frames) {
    const o = gatherOrder(t, r.mm, f, 'UNMAP', t.mark('call'));
    const start = t.log[o.start];
    assert.ok(start?.type === 'mmu-start' && !start.blockable, 'the reaper start is non-blockable');
    inOrder('oom reaper', [
      ['mmu-end', o.end],
      ['page-free', o.free],
      ['return', t.mark('return')],
    ]);
  }
});

test('mremap move (move_page_tables, UNMAP): no page freed; the old range is flushed and hooked before the PT unlock, the end and the return', () => {
  let target = 0;
  const r = aroundCall(
    3,
    function* (mm, base) {
      target = base + 64 * P;
      const moved = yield* mremap(mm, base, 3 * P, 3 * P, MREMAP_MAYMOVE | MREMAP_FIXED, target);
      assert.equal(moved, target);
    },
    function* (mm, base, frames) {
      for (const f of frames) assert.ok(!cached(mm, f), 'no TLB keeps the old address');
      for (let i = 0; i < 3; i++) assert.equal(yield* cpuReadU32(mm, target + i * P), i + 1);
      // The old address is gone for the CPU too: a load faults (no VMA), not a stale hit.
      let faulted = false;
      try {
        yield* cpuReadU32(mm, base);
      } catch (e) {
        faulted = isErrno(e);
      }
      assert.ok(faulted, 'a load at the old address faults');
    },
  );
  const frames = r.frames;
  const t = r.timeline;
  const call = t.mark('call');
  const ret = t.mark('return');
  assert.equal(
    t.count((e) => e.type === 'page-free', call, ret),
    0,
    'mremap frees no page',
  );
  frames.forEach((f, i) => {
    const o = t.range(r.mm, f.addr, 'UNMAP', call);
    const clear = t.clear(r.mm, f, o.start);
    const moved = t.set(r.mm, target + i * P, clear, (e) => e.pfn === f.pfn && e.gen === f.gen);
    const flush = t.flush(r.mm, f.addr, clear);
    const hook = t.hook(r.mm, f.addr, clear);
    // move_ptes() flushes before it drops the PT lock (eb66ae030829, CVE-2018-18281).
    const unlock = t.unlock(r.mm.ptl.name, moved);
    inOrder(`mremap page ${i}`, [
      ['mmu-start', o.start],
      ['pte-clear', clear],
      ['pte-set (new address)', moved],
      ['tlb-flush', flush],
      ['hook', hook],
      ['PT unlock', unlock],
      ['mmu-end', o.end],
      ['return', ret],
    ]);
  });
});

test('madvise(MADV_DONTNEED) (zap_page_range_single, CLEAR): the gather flush at tlb_finish_mmu, after the end, then the free', () => {
  const r = aroundCall(
    3,
    (mm, base) => madvise(mm, base, 3 * P, MADV_DONTNEED),
    function* (mm, base) {
      // The old contents are gone for the CPU: a stale TLB hit would still read them.
      for (let i = 0; i < 3; i++) assert.equal(yield* cpuReadU32(mm, base + i * P), 0);
    },
  );
  const t = r.timeline;
  for (const f of r.frames) {
    const o = gatherOrder(t, r.mm, f, 'CLEAR', t.mark('call'));
    inOrder('madvise', [
      ['mmu-end', o.end],
      ['tlb-flush', o.flush],
      ['page-free', o.free],
      ['return', t.mark('return')],
    ]);
  }
});

/**
 * A call that write-protects `frames` without freeing any (mprotect, fork): within the call,
 * each entry is made read-only inside the invalidation of `event`, then flushed and hooked,
 * before the end and the return. Returns the return's position.
 */
function writeProtectedInOrder(
  r: { timeline: Timeline; mm: Mm },
  frames: readonly Frame[],
  event: string,
  call: string,
): number {
  const t = r.timeline;
  const start = t.mark('call');
  const ret = t.mark('return');
  assert.equal(
    t.count((e) => e.type === 'page-free', start, ret),
    0,
    `${call} frees no page`,
  );
  for (const f of frames) {
    const o = t.range(r.mm, f.addr, event, start);
    const ro = t.set(r.mm, f.addr, o.start, (e) => e.pfn === f.pfn && !e.writable);
    inOrder(call, [
      ['mmu-start', o.start],
      ['pte-set (read-only)', ro],
      ['tlb-flush', t.flush(r.mm, f.addr, ro)],
      ['hook', t.hook(r.mm, f.addr, ro)],
      ['mmu-end', o.end],
      ['return', ret],
    ]);
  }
  return ret;
}

test('mprotect (change_protection, PROTECTION_VMA): no page freed; the write-protected entries are flushed and hooked before the end and the return', () => {
  const r = aroundCall(
    3,
    (mm, base) => mprotect(mm, base, 3 * P, PROT_READ),
    function* (mm, base) {
      // A store must fault now (SEGV): a stale writable translation would let it through.
      let faulted = false;
      try {
        yield* cpuWriteU32(mm, base, 99);
      } catch (e) {
        faulted = isErrno(e);
      }
      assert.ok(faulted, 'the store after mprotect(PROT_READ) faults');
      assert.equal(yield* cpuReadU32(mm, base), 1, 'and changed nothing');
    },
    (mm, frames) => {
      for (const f of frames)
        assert.ok(mm.cpuTlbs.values().next().value?.lookup(f.addr)?.writable, 'cached writable');
    },
  );
  writeProtectedInOrder(r, r.frames, 'PROTECTION_VMA', 'mprotect');
});

test("fork (copy_page_range, PROTECTION_PAGE on the parent): no page freed; the parent's write-protected entries are flushed and hooked before the end and the return", () => {
  let child: Mm | null = null;
  const r = aroundCall(
    3,
    function* (mm) {
      child = yield* fork(mm);
    },
    function* (mm, base) {
      const c = child!;
      // The parent's store must take the COW fault: through a stale writable translation it
      // would change the page the child shares.
      yield* cpuWriteU32(mm, base, 99);
      assert.equal(yield* cpuReadU32(c, base), 1, "the child's copy is untouched");
      assert.equal(yield* cpuReadU32(mm, base), 99);
      yield* mmput(c);
    },
  );
  assert.ok(child !== null);
  const ret = writeProtectedInOrder(r, r.frames, 'PROTECTION_PAGE', 'fork');
  const t = r.timeline;
  const cowFault = t.find((e) => e.type === 'cpu-fault' && e.mm === r.mm.id && e.write, ret);
  assert.ok(cowFault > ret, "the parent's store after fork faulted");
});

test('COW wp_page_copy (CLEAR, one page): clear, flush and hook before the new entry; the old page is put after the PT unlock and the end', () => {
  let old: Frame | null = null;
  const r = runWorld(16, ({ k, mm, log }) => {
    const cowBegun = new Completion('cow-begun');
    const childGone = new Completion('child-gone');
    let child: Mm | null = null;
    let blocked = false;
    k.spawn('parent', function* () {
      const p = yield* populate(mm, 1);
      child = yield* fork(mm);
      // A load caches the now read-only entry of the shared page.
      assert.equal(yield* cpuReadU32(mm, p.base), 1);
      old = p.frames[0]!;
      assertAllCached(mm, p.frames);
      // The notifier holds the copy's start until the child is gone, so the parent's put of
      // the old page is its last reference (the child's went at its exit).
      const sub = yield* hooked(mm, log, {
        *invalidateRangeStart(_sub, range) {
          if (range.event === 'CLEAR' && !blocked) {
            blocked = true;
            cowBegun.completeAll();
            yield* childGone.wait();
          }
          return 0;
        },
      });
      log.push({ type: 'call' });
      yield* cpuWriteU32(mm, p.base, 2);
      log.push({ type: 'return' });
      assert.equal(yield* cpuReadU32(mm, p.base), 2);
      yield* exitAndUnregister(mm, sub);
    });
    k.spawn('child-exit', function* () {
      yield* cowBegun.wait();
      assert.ok(child !== null);
      yield* mmput(child);
      childGone.completeAll();
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.ok(old !== null);
  const f: Frame = old;
  const t = r.timeline;
  const o = t.range(r.mm, f.addr, 'CLEAR', t.mark('call'));
  const clear = t.clear(r.mm, f, o.start);
  const flush = t.flush(r.mm, f.addr, clear);
  const hook = t.hook(r.mm, f.addr, clear);
  const fresh = t.set(r.mm, f.addr, clear, (e) => e.pfn !== f.pfn && e.writable);
  const unlock = t.unlock(r.mm.ptl.name, fresh);
  const free = t.free(f);
  inOrder('wp_page_copy', [
    ['mmu-start', o.start],
    ['pte-clear', clear],
    ['tlb-flush', flush],
    ['hook', hook],
    ['pte-set (the copy)', fresh],
    ['PT unlock', unlock],
    ['mmu-end', o.end],
    ['page-free', free],
    ['return', t.mark('return')],
  ]);
  assert.equal(t.frees(f), 1);
  // The child's exit dropped its reference without freeing the frame.
  const childClear = t.find((e) => e.type === 'pte-clear' && e.mm !== r.mm.id && e.pfn === f.pfn);
  inOrder('child exit', [
    ['mmu-start', o.start],
    ['child pte-clear', childClear],
    ['pte-clear', clear],
  ]);
});

test('try_to_unmap_one (reclaim, CLEAR): the CPU flush is batched past the end; the page is freed after try_to_unmap_flush()', () => {
  let frames: Frame[] = [];
  const r = runWorld(16, ({ k, m, mm, log }) => {
    const ready = new Completion('ready');
    const unmapBegun = new Completion('unmap-begun');
    const cpuCached = new Completion('cpu-cached');
    let blocked = false;
    k.spawn('cpu', function* () {
      const p = yield* populate(mm, 1);
      frames = p.frames;
      // The unmap's start waits until this CPU has touched the page again: reclaim's aging
      // flushed the translation the write left, and the unmap must find one to shoot down.
      const sub = yield* hooked(mm, log, {
        *invalidateRangeStart(_sub, range) {
          if (range.event === 'CLEAR' && !blocked) {
            blocked = true;
            unmapBegun.completeAll();
            yield* cpuCached.wait();
          }
          return 0;
        },
      });
      ready.completeAll();
      yield* unmapBegun.wait();
      assert.equal(yield* cpuReadU32(mm, p.base), 1);
      assertAllCached(mm, frames);
      cpuCached.completeAll();
      yield* join(kswapd);
      // Swapped out and back in.
      assert.equal(mm.pte(p.base)?.kind, 'swap');
      assert.equal(yield* cpuReadU32(mm, p.base), 1);
      yield* exitAndUnregister(mm, sub);
    });
    const kswapd = k.spawn('kswapd', function* () {
      yield* ready.wait();
      log.push({ type: 'call' });
      const freed = yield* shrinkMemory(m, 1);
      log.push({ type: 'return' });
      assert.equal(freed, 1);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  const t = r.timeline;
  const f = frames[0]!;
  const o = t.range(r.mm, f.addr, 'CLEAR', t.mark('call'));
  const clear = t.clear(r.mm, f, o.start);
  const clearEvent = t.log[clear];
  assert.ok(clearEvent?.type === 'pte-clear' && clearEvent.to === 'swap');
  const hook = t.hook(r.mm, f.addr, clear);
  const flush = t.flush(r.mm, f.addr, clear);
  const free = t.free(f);
  inOrder('try_to_unmap_one', [
    ['mmu-start', o.start],
    ['pte-clear', clear],
    ['hook (set_tlb_ubc_flush_pending)', hook],
    ['mmu-end', o.end],
    ['tlb-flush (try_to_unmap_flush)', flush],
    ['page-free', free],
    ['return', t.mark('return')],
  ]);
  // The batched flush is the whole address space, and it calls the hook again.
  const flushEvent = t.log[flush];
  assert.ok(flushEvent?.type === 'tlb-flush');
  assert.deepEqual([flushEvent.start, flushEvent.end], [0, TASK_SIZE]);
  inOrder('batched flush hook', [
    ['tlb-flush', flush],
    ['hook', t.hook(r.mm, f.addr, flush)],
    ['page-free', free],
  ]);
  assert.equal(t.frees(f), 1);
});

test('try_to_migrate_one (migration, CLEAR): migration entry, flush and hook inside the range; the old page is freed after the move', () => {
  let frames: Frame[] = [];
  const r = runWorld(16, ({ k, m, mm, log }) => {
    const ready = new Completion('ready');
    const migrated = new Completion('migrated');
    k.spawn('cpu', function* () {
      const sub = yield* hooked(mm, log);
      const p = yield* populate(mm, 1);
      frames = p.frames;
      ready.completeAll();
      yield* migrated.wait();
      assert.equal(yield* cpuReadU32(mm, p.base), 1, 'the contents moved');
      yield* exitAndUnregister(mm, sub);
    });
    k.spawn('kcompactd', function* () {
      yield* ready.wait();
      assertAllCached(mm, frames);
      const page = mm.pte(frames[0]!.addr)?.page;
      assert.ok(page !== null && page !== undefined);
      log.push({ type: 'call' });
      assert.equal(yield* migratePage(m, page), true);
      log.push({ type: 'return' });
      assert.ok(!cached(mm, frames[0]!));
      migrated.completeAll();
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  const t = r.timeline;
  const f = frames[0]!;
  const o = t.range(r.mm, f.addr, 'CLEAR', t.mark('call'));
  const clear = t.clear(r.mm, f, o.start);
  const clearEvent = t.log[clear];
  assert.ok(clearEvent?.type === 'pte-clear' && clearEvent.to === 'migration');
  const flush = t.flush(r.mm, f.addr, clear);
  const hook = t.hook(r.mm, f.addr, clear);
  const moved = t.set(r.mm, f.addr, o.end, (e) => e.pfn !== f.pfn);
  const free = t.free(f);
  inOrder('try_to_migrate_one', [
    ['mmu-start', o.start],
    ['pte-clear (to migration)', clear],
    ['tlb-flush', flush],
    ['hook', hook],
    ['mmu-end', o.end],
    ['pte-set (new frame)', moved],
    ['page-free', free],
    ['return', t.mark('return')],
  ]);
  assert.equal(t.frees(f), 1);
});
