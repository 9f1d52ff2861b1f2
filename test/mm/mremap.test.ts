import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isErrno } from '../../src/index.ts';
import {
  MAP_FIXED,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  TASK_SIZE,
  VM_DONTEXPAND,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mremap } from '../../src/mm/mremap.ts';
import { shrinkMemory } from '../../src/mm/reclaim.ts';
import {
  ANON,
  assertPaired,
  eventsOf,
  P,
  probe,
  RW,
  runMm,
  type Seen,
  snapshot,
} from './helpers.ts';

/** Installs open/close hooks on the VMA at `addr` that log (hook, start - base, end - base). */
function hook(mm: Mm, addr: number, base: number, log: string[]): void {
  mm.findVma(addr)!.ops = {
    name: 'probe',
    *open(v) {
      log.push(`open ${(v.start - base) / P}-${(v.end - base) / P}`);
    },
    *close(v) {
      log.push(`close ${(v.start - base) / P}-${(v.end - base) / P}`);
    },
  };
}

test('mremap moves a mapping that cannot grow in place: data, frames and rmap follow, one UNMAP invalidation over the old range', () => {
  let a = 0;
  let b = 0;
  const seen: Seen[] = [];
  const log: string[] = [];
  const r = runMm(function* (m) {
    const mm = m.createMm();
    a = yield* mmap(mm, { len: 3 * P, prot: RW, flags: ANON });
    // A neighbour right above blocks growing in place.
    yield* mmap(mm, { addr: a + 3 * P, len: P, prot: RW, flags: ANON | MAP_FIXED });
    for (let i = 0; i < 3; i++) yield* cpuWriteU32(mm, a + i * P + 4, 100 + i);
    // One page goes to swap (the oldest on the LRU): its swap entry must move too.
    yield* shrinkMemory(m, 1);
    assert.deepEqual(
      [0, 1, 2].map((i) => mm.pte(a + i * P)?.kind),
      ['swap', 'page', 'page'],
    );
    hook(mm, a, a, log);
    yield* probe(mm, seen);
    const page1 = mm.pte(a + P)!.page!;
    const frames = m.phys.usedFrames;
    b = yield* mremap(mm, a, 3 * P, 5 * P, MREMAP_MAYMOVE);
    assert.notEqual(b, a);
    assert.equal(mm.findVma(a), undefined, 'the old range is unmapped');
    assert.deepEqual([mm.findVma(b)!.start, mm.findVma(b)!.end], [b, b + 5 * P]);
    assert.equal(mm.addressesIn(a, a + 3 * P).length, 0);
    assert.equal(mm.pte(b + P)!.page, page1, 'the frame moved, not copied');
    assert.deepEqual(
      [page1.refcount, page1.mapcount, page1.rmap.map((e) => e.addr)],
      [1, 1, [b + P]],
    );
    assert.equal(mm.pte(b)?.kind, 'swap');
    assert.equal(m.phys.usedFrames, frames);
    for (let i = 0; i < 3; i++) assert.equal(yield* cpuReadU32(mm, b + i * P + 4), 100 + i);
    assert.equal(yield* cpuReadU32(mm, b + 4 * P), 0);
    yield* cpuWriteU32(mm, b + 4 * P, 7);
  });
  assert.equal(r.ok, true, r.bug?.message);
  const k = (b - a) / P;
  assert.deepEqual(log, [`open ${k}-${k + 5}`, 'close 0-3']);
  // The move's UNMAP with mmap_lock held for write, then munmap's UNMAP of the (empty) old range.
  // (The CLEAR after them is the write to the zero page mapped by the read of the new tail.)
  assert.deepEqual(seen, [
    { event: 'UNMAP', start: a, end: a + 3 * P, mmapHeld: true, mmapWrite: true, atomic: 0 },
    { event: 'UNMAP', start: a, end: a + 3 * P, mmapHeld: true, mmapWrite: true, atomic: 0 },
    {
      event: 'CLEAR',
      start: b + 4 * P,
      end: b + 5 * P,
      mmapHeld: true,
      mmapWrite: false,
      atomic: 0,
    },
  ]);
  assertPaired(r.rec);
  const ev = r.rec.events;
  const move = eventsOf(r.rec, 'mmu-start').find((e) => e.event === 'UNMAP')!;
  const done = ev.findIndex((e) => e.type === 'mmu-start-done' && e.id === move.id);
  const end = ev.findIndex((e) => e.type === 'mmu-end' && e.id === move.id);
  const inside = ev.slice(done, end);
  assert.deepEqual(
    inside.filter((e) => e.type === 'tlb-flush').map((e) => [e.start, e.end]),
    [[a, a + 3 * P]],
  );
  const flushAt = inside.findIndex((e) => e.type === 'tlb-flush');
  assert.ok(
    inside.slice(0, flushAt).filter((e) => e.type === 'pte-clear').length === 2,
    'both present entries cleared before the flush',
  );
  assert.equal(inside.filter((e) => e.type === 'page-free').length, 0);
});

test('mremap shrinks by unmapping the tail and grows in place when the space after is free', () => {
  let a = 0;
  const r = runMm(function* (m) {
    const mm = m.createMm();
    a = yield* mmap(mm, { len: 4 * P, prot: RW, flags: ANON });
    for (let i = 0; i < 4; i++) yield* cpuWriteU32(mm, a + i * P, i + 1);
    assert.equal(yield* mremap(mm, a, 4 * P, 2 * P, 0), a);
    assert.deepEqual([mm.vmas.length, mm.vmas[0]!.end], [1, a + 2 * P]);
    assert.equal(m.phys.usedFrames, 2);
    assert.equal(yield* mremap(mm, a, 2 * P, 6 * P, 0), a, 'grown in place');
    assert.deepEqual([mm.vmas.length, mm.vmas[0]!.end], [1, a + 6 * P]);
    assert.equal(yield* cpuReadU32(mm, a + P), 2);
    assert.equal(yield* cpuReadU32(mm, a + 3 * P), 0, 'the old tail does not come back');
    assert.equal(yield* mremap(mm, a, 6 * P, 6 * P - 100, 0), a, 'same page count: nothing to do');
  });
  assert.equal(r.ok, true, r.bug?.message);
  assertPaired(r.rec);
  assert.deepEqual(
    eventsOf(r.rec, 'mmu-start').map((e) => [e.event, e.start, e.end]),
    [['UNMAP', a + 2 * P, a + 4 * P]],
  );
});

test('MREMAP_FIXED replaces what is at the target; a smaller FIXED move drops the old tail first', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 3 * P, prot: RW, flags: ANON });
    const t = yield* mmap(mm, { len: 4 * P, prot: RW, flags: ANON });
    for (let i = 0; i < 3; i++) yield* cpuWriteU32(mm, a + i * P, 50 + i);
    yield* cpuWriteU32(mm, t + P, 99);
    const got = yield* mremap(mm, a, 3 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, t + P);
    assert.equal(got, t + P);
    assert.deepEqual(
      mm.vmas.map((v) => [v.start - t, v.end - t]),
      [
        [0, P],
        [P, 3 * P],
        [3 * P, 4 * P],
      ],
    );
    assert.equal(mm.findVma(a), undefined);
    assert.equal(yield* cpuReadU32(mm, t + P), 50);
    assert.equal(yield* cpuReadU32(mm, t + 2 * P), 51);
    assert.equal(m.phys.usedFrames, 2, 'the target page and the old third page were freed');
  });
  assert.equal(r.ok, true, r.bug?.message);
  assertPaired(r.rec);
});

test('MREMAP_DONTUNMAP moves the entries and keeps the old VMA, empty', () => {
  const log: string[] = [];
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * P, prot: RW, flags: ANON });
    yield* cpuWriteU32(mm, a, 8);
    yield* cpuWriteU32(mm, a + P, 9);
    hook(mm, a, a, log);
    const b = yield* mremap(mm, a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    assert.notEqual(b, a);
    assert.deepEqual([mm.findVma(a)?.start, mm.findVma(a)?.end], [a, a + 2 * P]);
    assert.equal(mm.addressesIn(a, a + 2 * P).length, 0);
    assert.equal(yield* cpuReadU32(mm, b), 8);
    assert.equal(yield* cpuReadU32(mm, b + P), 9);
    assert.equal(yield* cpuReadU32(mm, a), 0, 'the old range faults in fresh zero-filled memory');
    assert.equal(log.length, 1);
    assert.match(log[0]!, /^open /);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assertPaired(r.rec);
  assert.deepEqual(
    eventsOf(r.rec, 'mmu-start').map((e) => e.event),
    ['UNMAP'],
  );
});

test('mremap rejects bad input with the errno Linux returns and changes nothing', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * P, prot: RW, flags: ANON });
    const n = yield* mmap(mm, { addr: a + 2 * P, len: P, prot: RW, flags: ANON | MAP_FIXED });
    const d = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
    mm.findVma(d)!.flags |= VM_DONTEXPAND;
    yield* cpuWriteU32(mm, a, 1);
    yield* cpuWriteU32(mm, n, 2);
    const MM = MREMAP_MAYMOVE;
    const FX = MREMAP_MAYMOVE | MREMAP_FIXED;
    const cases: [number, number, number, number, number, string][] = [
      [a + 1, P, P, MM, 0, 'EINVAL'],
      [a, P, P, 8, 0, 'EINVAL'],
      [a, P, 0, MM, 0, 'EINVAL'],
      [a, P, -P, MM, 0, 'EINVAL'],
      [a, 0, P, MM, 0, 'EINVAL'],
      [a, P, P, MREMAP_FIXED, a + 8 * P, 'EINVAL'],
      [a, P, P, MREMAP_DONTUNMAP, 0, 'EINVAL'],
      [a, P, 2 * P, MM | MREMAP_DONTUNMAP, 0, 'EINVAL'],
      [a, P, P, FX, a + 8 * P + 5, 'EINVAL'],
      [a, 2 * P, 2 * P, FX, a + P, 'EINVAL'],
      [a, P, 2 * P, FX, TASK_SIZE - P, 'EINVAL'],
      [a, P, P, FX, 0x1000, 'EPERM'],
      [a - 4 * P, P, P, MM, 0, 'EFAULT'],
      [a, 3 * P, 3 * P, MM, 0, 'EFAULT'],
      [a, 3 * P, 3 * P, FX, a + 8 * P, 'EFAULT'],
      [d, P, 2 * P, MM, 0, 'EFAULT'],
      [d, P, P, MM | MREMAP_DONTUNMAP, 0, 'EINVAL'],
      [a, 2 * P, 3 * P, 0, 0, 'ENOMEM'],
    ];
    const before = snapshot(mm);
    for (const [oa, ol, nl, fl, na, code] of cases) {
      const what = `${oa - a}, ${ol}, ${nl}, ${fl}, ${na - a}`;
      try {
        yield* mremap(mm, oa, ol, nl, fl, na);
        assert.fail(`expected ${code} for ${what}`);
      } catch (e) {
        assert.ok(isErrno(e, code as 'EINVAL'), `${what}: ${String(e)}`);
      }
      assert.equal(snapshot(mm), before, what);
    }
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(eventsOf(r.rec, 'mmu-start').length, 0);
});

test('mremap moves a shared file mapping: pgoff follows, the page cache stays, rmap locks taken in Linux order', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const f = m.createFile('f', { size: 4 * P });
    yield* f.pwrite(2 * P, new Uint8Array([3, 0, 0, 0]));
    const a = yield* mmap(mm, { len: 3 * P, prot: RW, flags: MAP_SHARED, file: f, offset: P });
    yield* mmap(mm, { addr: a + 3 * P, len: P, prot: RW, flags: ANON | MAP_FIXED });
    assert.equal(yield* cpuReadU32(mm, a + P), 3);
    // A registered notifier took i_mmap_rwsem and anon_vma (mm_take_all_locks()); the move takes
    // them again (take_rmap_locks()): lockdep sees one order.
    yield* probe(mm, []);
    const b = yield* mremap(mm, a + P, 2 * P, 3 * P, MREMAP_MAYMOVE);
    assert.deepEqual([mm.findVma(b)!.pgoff, mm.findVma(a)!.end], [2, a + P]);
    assert.equal(mm.pte(b)!.page, f.cache.get(2));
    yield* cpuWriteU32(mm, b + P, 4);
    assert.equal(new DataView((yield* f.pread(3 * P, 4)).buffer).getInt32(0, true), 4);
    assert.equal(f.mappings.size, 2);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assertPaired(r.rec);
});
