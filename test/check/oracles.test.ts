import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { measureLeaks } from '../../src/check/oracles/leaks.ts';
import { type Co, isKernelBug, Kernel } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from '../../src/mm/mmu-notifier.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { SecondaryMmu, snapshotPte } from '../../src/mm/secondary-mmu.ts';
import { flushTlbRange } from '../../src/mm/tlb.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function run(body: (m: Machine, mm: Mm, dev: SecondaryMmu) => Co<void>) {
  const k = new Kernel();
  const m = new Machine(k, { frames: 8 });
  const oracles = installOracles(k, m);
  const mm = m.createMm();
  const dev = new SecondaryMmu('dev0');
  k.spawn('t', () => body(m, mm, dev));
  return { ...k.run(), oracles, machine: m };
}

function* page(mm: Mm): Co<number> {
  const a = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: ANON });
  yield* cpuWriteU32(mm, a, 1);
  return a;
}

test('coherence: a translation that outlives its CPU entry is reported at the change', () => {
  const r = run(function* (_m, mm, dev) {
    const a = yield* page(mm);
    dev.map(mm, a, snapshotPte(mm.pte(a)!));
    yield* munmap(mm, a, PAGE_SIZE);
  });
  assert.ok(isKernelBug(r.bug, 'coherence'), r.bug?.message);
  assert.match(
    r.bug!.message,
    /device dev0 still maps mm1 0x[0-9a-f]+ \(pfn \d+\) after the CPU entry was cleared/,
  );
});

test('coherence: committing a stale snapshot, or a writable one of a read-only entry, is reported', () => {
  const stale = run(function* (_m, mm, dev) {
    const a = yield* page(mm);
    const snap = snapshotPte(mm.pte(a)!);
    yield* munmap(mm, a, PAGE_SIZE);
    dev.map(mm, a, snap);
  });
  assert.ok(isKernelBug(stale.bug, 'coherence'));
  assert.match(stale.bug!.message, /commits a translation .* not present \(stale snapshot\)/);
  const rw = run(function* (_m, mm, dev) {
    const a = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_READ, flags: ANON });
    yield* cpuReadU32(mm, a);
    dev.map(mm, a, { ...snapshotPte(mm.pte(a)!), writable: true });
  });
  assert.ok(isKernelBug(rw.bug, 'coherence'));
  assert.match(rw.bug!.message, /writable translation .* read-only/);
});

test('coherence: device access without a translation or writing through a read-only one', () => {
  const none = run(function* (_m, mm, dev) {
    const a = yield* page(mm);
    dev.access(mm, a, false);
  });
  assert.match(none.bug!.message, /accesses mm1 0x[0-9a-f]+ without a translation/);
  const ro = run(function* (_m, mm, dev) {
    const a = yield* page(mm);
    dev.map(mm, a, { ...snapshotPte(mm.pte(a)!), writable: false });
    dev.access(mm, a, true);
  });
  assert.match(ro.bug!.message, /writes mm1 0x[0-9a-f]+ through a read-only translation/);
});

test('a correct device that zaps in invalidate_range_start passes, and the oracles count checks', () => {
  const r = run(function* (_m, mm, dev) {
    const a = yield* page(mm);
    dev.map(mm, a, snapshotPte(mm.pte(a)!));
    dev.access(mm, a, true);
    const range = rangeInit(mm, 'UNMAP', a, a + PAGE_SIZE);
    yield* invalidateRangeStart(range);
    dev.unmapRange(mm, a, a + PAGE_SIZE);
    yield* invalidateRangeEnd(range);
    yield* munmap(mm, a, PAGE_SIZE);
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.ok(r.oracles.coherence.checks > 3);
  assert.ok(r.oracles.pairing.checks >= 2);
});

test('pairing: an end with another range, an end without a start, a start never ended', () => {
  const mismatch = run(function* (_m, mm) {
    const range = rangeInit(mm, 'CLEAR', 0x10000, 0x20000);
    yield* invalidateRangeStart(range);
    yield* invalidateRangeEnd({ ...range, end: 0x18000 });
  });
  assert.ok(isKernelBug(mismatch.bug, 'notifier-pairing'));
  assert.match(
    mismatch.bug!.message,
    /\[0x10000, 0x18000\) does not match its start over mm1 \[0x10000, 0x20000\) \(CLEAR\)/,
  );
  const orphan = run(function* (_m, mm) {
    yield* invalidateRangeEnd(rangeInit(mm, 'CLEAR', 0, 0x1000));
  });
  assert.match(orphan.bug!.message, /without a matching successful start/);
  const open = run(function* (_m, mm) {
    yield* invalidateRangeStart(rangeInit(mm, 'UNMAP', 0, 0x1000));
    yield* mmput(mm);
  });
  assert.match(open.bug!.message, /\(UNMAP\) was never ended/);
});

test('leaks: a frame kept after every process exited is reported; a clean exit is not', () => {
  const leak = run(function* (m, mm) {
    const a = yield* page(mm);
    m.phys.get(mm.pte(a)!.page!);
    yield* mmput(mm);
  });
  assert.ok(isKernelBug(leak.bug, 'leak'), leak.bug?.message);
  assert.match(leak.bug!.message, /still held: 1 frames/);
  const clean = run(function* (_m, mm) {
    yield* page(mm);
    yield* mmput(mm);
  });
  assert.equal(clean.ok, true, clean.bug?.message);
  assert.deepEqual(measureLeaks(clean.machine), {
    frames: 0,
    swapSlots: 0,
    mms: 0,
    subscriptions: 0,
    pins: 0,
  });
});

test('use after free: freeing a frame a device still maps, and a double put', () => {
  const r = run(function* (m, mm, dev) {
    const a = yield* page(mm);
    const p = mm.pte(a)!.page!;
    dev.map(mm, a, snapshotPte(mm.pte(a)!));
    m.phys.get(p);
    m.phys.put(p);
    mm.clearPte(a);
  });
  assert.ok(isKernelBug(r.bug, 'coherence'), r.bug?.message);
  const dbl = run(function* (m, mm) {
    const a = yield* page(mm);
    const p = mm.pte(a)!.page!;
    mm.clearPte(a);
    flushTlbRange(mm, a, a + PAGE_SIZE);
    m.phys.put(p);
    m.phys.put(p);
  });
  assert.ok(isKernelBug(dbl.bug, 'use-after-free'), dbl.bug?.message);
  assert.match(dbl.bug!.message, /put_page on pfn \d+ which is free/);
});

test('tlb-revocation: a cached entry lagging its cleared PTE fails a return that left the range nothing, or read only for a writable entry; not one whose rights the call left', () => {
  // The events a reclaim with a batched flush leaves behind: the PTE cleared, the TLB not yet
  // flushed. Then an mprotect or munmap returns over the page.
  const after = (writable: boolean, leaves: 'none' | 'read' | 'write') =>
    run(function* (_m, mm) {
      const k = mm.machine.kernel;
      const at = 0x10000;
      const page = { mm: mm.id, addr: at, pfn: 3, gen: 1 };
      k.trace.emit('pte-set', { ...page, readable: true, writable });
      k.trace.emit('tlb-fill', { ...page, tlb: 'cpu0', kind: 'cpu', writable });
      k.trace.emit('pte-clear', { ...page, to: 'swap' });
      k.trace.emit('tlb-revoked', { mm: mm.id, start: at, end: at + PAGE_SIZE, call: 'x', leaves });
      yield* mmput(mm);
    });
  const ok = after(false, 'read');
  assert.equal(ok.ok, true, ok.bug?.message);
  assert.equal(after(true, 'write').ok, true);
  for (const [writable, leaves] of [
    [false, 'none'],
    [true, 'read'],
  ] as const) {
    const r = after(writable, leaves);
    assert.ok(isKernelBug(r.bug, 'tlb-revocation'), `${writable} ${leaves}: ${r.bug?.message}`);
    assert.match(r.bug!.message, new RegExp(`what it left the range \\(${leaves}\\)`));
  }
});
