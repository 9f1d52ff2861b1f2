// Unit tests of the CPU TLB model: what fills it, what a hit skips, what empties it (a flush,
// which reaches every CPU of the mm, or an eviction when full), how a clean entry is cached
// for writes, the machine without TLBs, and the oracle that catches a frame freed while a TLB
// still reaches it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { type Co, isKernelBug, Kernel } from '../../src/index.ts';
import { join } from '../../src/kernel/context.ts';
import { Completion } from '../../src/kernel/sync/completion.ts';
import type { TraceEvent, TraceEventOf } from '../../src/kernel/trace.ts';
import {
  MADV_FREE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { Machine, type MachineOptions } from '../../src/mm/machine.ts';
import { madvise } from '../../src/mm/madvise.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import type { Page } from '../../src/mm/page.ts';
import { CPU_TLB, CPU_TLB_ENTRIES, cpuTlb, flushTlbRange } from '../../src/mm/tlb.ts';
import type { TranslationCache } from '../../src/mm/tlb-cache.ts';

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const hex = (n: number) => `0x${n.toString(16)}`;

/** What a world's builder gets. */
interface World {
  readonly k: Kernel;
  readonly m: Machine;
  readonly mm: Mm;
}

/** Builds a world of one machine and one address space, runs it, and returns the run with its trace. */
function run(
  body: (w: World) => void,
  options: { machine?: MachineOptions; oracles?: boolean } = {},
) {
  const k = new Kernel();
  const events: TraceEvent[] = [];
  k.trace.subscribe((e) => {
    events.push({ ...e });
  });
  const m = new Machine(k, { frames: 128, ...options.machine });
  if (options.oracles ?? true) installOracles(k, m);
  const mm = m.createMm();
  body({ k, m, mm });
  const r = k.run();
  return { ...r, events, m, mm };
}

function ofType<T extends TraceEvent['type']>(events: TraceEvent[], type: T): TraceEventOf<T>[] {
  return events.filter((e): e is TraceEventOf<T> => e.type === type);
}

/** The running task's TLB for `mm`. */
function myTlb(mm: Mm): TranslationCache {
  const tlb = cpuTlb(mm);
  assert.ok(tlb !== null, 'the running task has a TLB for the mm');
  return tlb;
}

/** The frame mapped at `addr`. */
function frameAt(mm: Mm, addr: number): Page {
  const page = mm.pte(addr)?.page;
  assert.ok(page !== null && page !== undefined, `a frame is mapped at ${hex(addr)}`);
  return page;
}

/** The little-endian u32 at the start of a frame, read from its bytes (no CPU access). */
function u32Of(page: Page): number {
  const b = new Uint8Array(4);
  page.data.read(0, b, 0, 4);
  return b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24);
}

/** Makes the entry at `addr` read-only under the PTL, with no flush. */
function* writeProtectNoFlush(mm: Mm, addr: number): Co {
  yield* mm.ptl.lock();
  const pte = mm.pte(addr);
  assert.ok(pte !== undefined);
  mm.protectPte(addr, pte, true, false);
  mm.ptl.unlock();
}

/** Clears the entry at `addr` under the PTL, with no flush; the mapping's reference becomes the caller's. */
function* clearNoFlush(mm: Mm, addr: number): Co<Page> {
  yield* mm.ptl.lock();
  const pte = mm.clearPte(addr);
  mm.ptl.unlock();
  const page = pte?.page;
  assert.ok(page !== null && page !== undefined, `a frame was mapped at ${hex(addr)}`);
  return page;
}

test('a miss walks and fills the TLB; the next access hits without walking', () => {
  let a = 0;
  const r = run(({ k, mm }) => {
    k.spawn('t', function* () {
      a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
      const tlb = myTlb(mm);
      assert.equal(tlb.lookup(a), undefined, 'empty before the first access');
      yield* cpuWriteU32(mm, a, 5);
      const t = tlb.lookup(a);
      const page = frameAt(mm, a);
      assert.deepEqual([t?.pfn, t?.gen, t?.writable], [page.pfn, page.gen, true]);
      // A walk sets the accessed bit; a hit leaves the entry alone.
      const pte = mm.pte(a)!;
      pte.accessed = false;
      assert.equal(yield* cpuReadU32(mm, a), 5);
      assert.equal(pte.accessed, false, 'the read hit the TLB: no walk set the accessed bit');
      yield* mmput(mm);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  const fills = ofType(r.events, 'tlb-fill');
  assert.equal(fills.length, 1, 'one fill: the write missed, the read hit');
  const fill = fills[0]!;
  assert.deepEqual([fill.addr, fill.kind, fill.writable], [a, 'cpu', true]);
  assert.match(fill.tlb, /^cpu\d+ \(t\)$/);
  // No entry at the first access: the fault came first, then the walk that filled.
  const fault = r.events.findIndex((e) => e.type === 'cpu-fault');
  assert.ok(fault >= 0 && fault < r.events.indexOf(fill));
});

test('lazy use: a store hits a writable translation the page table has write-protected, until a flush', () => {
  let a = 0;
  const r = run(({ k, mm }) => {
    k.spawn('t', function* () {
      a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
      yield* cpuWriteU32(mm, a, 1);
      yield* writeProtectNoFlush(mm, a);
      // The entry is read-only, the TLB still holds it writable: the store goes through.
      yield* cpuWriteU32(mm, a, 2);
      assert.equal(mm.pte(a)!.writable, false, 'no write fault made the entry writable');
      assert.equal(u32Of(frameAt(mm, a)), 2);
      flushTlbRange(mm, a, a + P);
      assert.equal(myTlb(mm).lookup(a), undefined, 'the flush dropped the translation');
      // Now the store walks, finds the read-only entry and faults (the page is reused in place).
      yield* cpuWriteU32(mm, a, 3);
      assert.equal(mm.pte(a)!.writable, true);
      assert.equal(yield* cpuReadU32(mm, a), 3);
      yield* mmput(mm);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  const flush = r.events.findIndex((e) => e.type === 'tlb-flush' && e.start === a);
  const faults = ofType(r.events, 'cpu-fault').map((f) => r.events.indexOf(f));
  assert.equal(
    faults.filter((i) => i < flush).length,
    1,
    'before the flush only the first store faulted',
  );
  assert.equal(faults.filter((i) => i > flush).length, 1, 'the store after the flush faulted');
});

test('lazy use: a load hits a translation of an entry that was cleared, until a flush', () => {
  const r = run(({ k, m, mm }) => {
    k.spawn('t', function* () {
      const a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
      yield* cpuWriteU32(mm, a, 7);
      // The mapping's reference keeps the frame: only the page table forgets it.
      const page = yield* clearNoFlush(mm, a);
      assert.equal(mm.pte(a), undefined);
      assert.equal(yield* cpuReadU32(mm, a), 7, 'the old frame, through the TLB');
      assert.equal(mm.pte(a), undefined, 'the hit did not fault a new entry in');
      flushTlbRange(mm, a, a + P);
      m.phys.put(page);
      assert.equal(yield* cpuReadU32(mm, a), 0, 'after the flush the load faults in a zero page');
      yield* mmput(mm);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(
    ofType(r.events, 'cpu-fault').length,
    2,
    'the first store and the load after the flush',
  );
});

test('flush_tlb_mm_range drops exactly the translations of its range', () => {
  let a = 0;
  const r = run(({ k, mm }) => {
    k.spawn('t', function* () {
      a = yield* mmap(mm, { len: 3 * P, prot: RW, flags: ANON });
      for (let i = 0; i < 3; i++) yield* cpuWriteU32(mm, a + i * P, i);
      const tlb = myTlb(mm);
      assert.equal(tlb.size, 3);
      flushTlbRange(mm, a + P, a + 2 * P);
      assert.deepEqual(
        tlb.list().map((t) => t.addr),
        [a, a + 2 * P],
        'only the middle page went',
      );
      flushTlbRange(mm, a, a + 3 * P);
      assert.equal(tlb.size, 0);
      yield* mmput(mm);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  const flushes = ofType(r.events, 'tlb-flush').filter((f) => f.start >= a && f.end <= a + 3 * P);
  assert.deepEqual(
    flushes.slice(0, 2).map((f) => [f.start - a, f.end - a]),
    [
      [P, 2 * P],
      [0, 3 * P],
    ],
  );
});

test('shootdown: a flush by one task empties the TLBs of every task of the mm, and of no other mm', () => {
  const r = run(({ k, m, mm }) => {
    const other = m.createMm();
    let a = 0;
    let b = 0;
    const mapped = new Completion('mapped');
    const cached = new Completion('cached');
    const setup = k.spawn('one', function* () {
      a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
      b = yield* mmap(other, { len: P, prot: RW, flags: ANON });
      yield* cpuWriteU32(mm, a, 1);
      yield* cpuWriteU32(other, b, 2);
      mapped.completeAll();
      yield* cached.wait();
      assert.equal(mm.cpuTlbs.size, 2, 'two CPUs ran in the mm');
      const [first, second] = [...mm.cpuTlbs.values()];
      assert.ok(first !== undefined && second !== undefined);
      assert.ok(first.lookup(a) !== undefined && second.lookup(a) !== undefined, 'both cache it');
      assert.notEqual(first.name, second.name);
      flushTlbRange(mm, a, a + P);
      for (const tlb of mm.cpuTlbs.values())
        assert.equal(tlb.lookup(a), undefined, `${tlb.name} was shot down`);
      assert.ok(myTlb(other).lookup(b) !== undefined, 'the other mm kept its translation');
    });
    k.spawn('two', function* () {
      yield* mapped.wait();
      assert.equal(yield* cpuReadU32(mm, a), 1);
      cached.completeAll();
      yield* join(setup);
      yield* mmput(mm);
      yield* mmput(other);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  const fills = ofType(r.events, 'tlb-fill').filter((f) => f.mm === r.mm.id);
  assert.equal(new Set(fills.map((f) => f.tlb)).size, 2, 'each task filled its own TLB');
});

test('a read of a writable but clean entry is cached non-writable: the next store walks and sets the dirty bit', () => {
  let a = 0;
  const r = run(({ k, mm }) => {
    k.spawn('t', function* () {
      a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
      yield* cpuWriteU32(mm, a, 1);
      // MADV_FREE cleans the entry (dirty and accessed off, still writable) and flushes it.
      yield* madvise(mm, a, P, MADV_FREE);
      const pte = mm.pte(a)!;
      const page = frameAt(mm, a);
      assert.deepEqual([pte.writable, pte.dirty, page.lazyfree], [true, false, true]);
      assert.equal(yield* cpuReadU32(mm, a), 1);
      const tlb = myTlb(mm);
      assert.equal(tlb.lookup(a)?.writable, false, 'a clean entry is cached read-only for stores');
      assert.equal(pte.dirty, false, 'a load does not dirty');
      yield* cpuWriteU32(mm, a, 2);
      assert.equal(pte.dirty, true, 'the store walked and set the dirty bit');
      assert.deepEqual(
        [page.dirty, page.lazyfree],
        [true, false],
        'the page is no longer freeable',
      );
      assert.equal(tlb.lookup(a)?.writable, true);
      yield* mmput(mm);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  const fills = ofType(r.events, 'tlb-fill').filter((f) => f.addr === a);
  assert.deepEqual(
    fills.map((f) => f.writable),
    [true, false, true],
    'the first store, the load after MADV_FREE, the store that walked again',
  );
  const load = r.events.indexOf(fills[1]!);
  assert.equal(
    ofType(r.events, 'cpu-fault').filter((f) => r.events.indexOf(f) > load).length,
    0,
    'the store after the load walked without faulting',
  );
});

test(`a full set of the TLB (${CPU_TLB.sets} sets of ${CPU_TLB.ways} ways) evicts its oldest translation with a tlb-drop; other sets keep theirs`, () => {
  let a = 0;
  const r = run(({ k, mm }) => {
    k.spawn('t', function* () {
      a = yield* mmap(mm, { len: (CPU_TLB_ENTRIES + 1) * P, prot: RW, flags: ANON });
      const tlb = myTlb(mm);
      for (let i = 0; i < CPU_TLB_ENTRIES; i++) yield* cpuReadU32(mm, a + i * P);
      assert.equal(tlb.size, CPU_TLB_ENTRIES);
      assert.ok(tlb.lookup(a) !== undefined, 'nothing evicted while there was room');
      yield* cpuReadU32(mm, a + CPU_TLB_ENTRIES * P);
      assert.equal(tlb.size, CPU_TLB_ENTRIES);
      assert.equal(tlb.lookup(a), undefined, 'the oldest went');
      assert.ok(tlb.lookup(a + P) !== undefined);
      assert.ok(tlb.lookup(a + CPU_TLB_ENTRIES * P) !== undefined);
      // Touching the evicted page misses again and evicts the next oldest of its set: the page
      // CPU_TLB.sets pages after it (same set), not the next page (another set).
      yield* cpuReadU32(mm, a);
      assert.equal(tlb.lookup(a + CPU_TLB.sets * P), undefined);
      assert.ok(tlb.lookup(a + P) !== undefined);
      yield* mmput(mm);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  const drops = ofType(r.events, 'tlb-drop');
  assert.deepEqual(
    drops.map((d) => d.addr - a),
    [0, CPU_TLB.sets * P],
  );
  assert.equal(drops[0]!.mm, r.mm.id);
  assert.equal(
    ofType(r.events, 'tlb-fill').length,
    CPU_TLB_ENTRIES + 2,
    'one fill per miss, no fill for a hit',
  );
});

/** Writes 1, write-protects without flush, writes 2; then clears without flush and reads. */
function lazyWorld(w: World): void {
  w.k.spawn('t', function* () {
    const a = yield* mmap(w.mm, { len: P, prot: RW, flags: ANON });
    yield* cpuWriteU32(w.mm, a, 1);
    yield* writeProtectNoFlush(w.mm, a);
    yield* cpuWriteU32(w.mm, a, 2);
    const page = yield* clearNoFlush(w.mm, a);
    const seen = yield* cpuReadU32(w.mm, a);
    flushTlbRange(w.mm, a, a + P);
    w.m.phys.put(page);
    w.k.trace.emit('note', { text: `read ${seen}` });
    yield* mmput(w.mm);
  });
}

test('cpuTlbs: false: every access walks, so a changed entry takes effect at once', () => {
  const without = run(lazyWorld, { machine: { cpuTlbs: false } });
  assert.equal(without.ok, true, without.bug?.message);
  assert.equal(ofType(without.events, 'tlb-fill').length, 0, 'nothing is cached');
  assert.equal(without.mm.cpuTlbs.size, 0);
  // The store after the write-protect faults; the load after the clear faults in a zero page.
  assert.deepEqual(
    ofType(without.events, 'cpu-fault').map((f) => f.write),
    [true, true, false],
  );
  assert.deepEqual(
    ofType(without.events, 'note').map((n) => n.text),
    ['read 0'],
  );
  // The same world with TLBs: neither change is seen before the flush.
  const withTlb = run(lazyWorld);
  assert.equal(withTlb.ok, true, withTlb.bug?.message);
  assert.deepEqual(
    ofType(withTlb.events, 'cpu-fault').map((f) => f.write),
    [true],
  );
  assert.deepEqual(
    ofType(withTlb.events, 'note').map((n) => n.text),
    ['read 2'],
  );
});

test('cpuTlb() is null without TLBs or outside a task', () => {
  const r = run(
    ({ k, mm }) => {
      k.spawn('t', function* () {
        yield;
        assert.equal(cpuTlb(mm), null);
        yield* mmput(mm);
      });
    },
    { machine: { cpuTlbs: false } },
  );
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(cpuTlb(r.mm), null, 'no task runs');
});

test('oracle: freeing a frame a TLB still caches is stale-tlb, naming the TLB, the address and the step of the fill', () => {
  let a = 0;
  const r = run(({ k, m, mm }) => {
    k.spawn('writer', function* () {
      a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
      yield* cpuWriteU32(mm, a, 1);
      const page = yield* clearNoFlush(mm, a);
      // No flush: the TLB of this CPU still reaches the frame.
      m.phys.put(page);
      yield* mmput(mm);
    });
  });
  assert.ok(isKernelBug(r.bug, 'stale-tlb'), r.bug?.message);
  const fill = ofType(r.events, 'tlb-fill')[0]!;
  const free = ofType(r.events, 'page-free')[0]!;
  assert.equal(free.pfn, fill.pfn);
  assert.equal(
    r.bug.message.includes(
      `the TLB of ${fill.tlb} still caches mm${r.mm.id} ${hex(a)} → pfn ${fill.pfn} (writable), filled at step ${fill.step}`,
    ),
    true,
    r.bug.message,
  );
  assert.match(r.bug.message, /^.*pfn \d+ is freed while /);
  assert.match(r.bug.message, /cleared at step \d+, and a CPU TLB flush of mm\d+ covering 0x/);
  assert.match(fill.tlb, /^cpu\d+ \(writer\)$/);
});

test('oracle: the same free after a flush, or of a frame evicted from the TLB, is clean', () => {
  const flushed = run(({ k, m, mm }) => {
    k.spawn('t', function* () {
      const a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
      yield* cpuWriteU32(mm, a, 1);
      const page = yield* clearNoFlush(mm, a);
      flushTlbRange(mm, a, a + P);
      m.phys.put(page);
      yield* mmput(mm);
    });
  });
  assert.equal(flushed.ok, true, flushed.bug?.message);
  // An eviction is the TLB forgetting on its own: the oracle follows it through tlb-drop.
  const evicted = run(({ k, m, mm }) => {
    k.spawn('t', function* () {
      const a = yield* mmap(mm, { len: (CPU_TLB_ENTRIES + 1) * P, prot: RW, flags: ANON });
      yield* cpuWriteU32(mm, a, 1);
      for (let i = 1; i <= CPU_TLB_ENTRIES; i++) yield* cpuReadU32(mm, a + i * P);
      assert.equal(myTlb(mm).lookup(a), undefined);
      const page = yield* clearNoFlush(mm, a);
      m.phys.put(page);
      yield* mmput(mm);
    });
  });
  assert.equal(evicted.ok, true, evicted.bug?.message);
});
