import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isErrno } from '../../src/index.ts';
import {
  MADV_DONTNEED,
  MADV_FREE,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  VM_LOCKED,
  VM_PFNMAP,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { madvise } from '../../src/mm/madvise.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mmuNotifierRegister } from '../../src/mm/mmu-notifier-register.ts';
import { MmuNotifier } from '../../src/mm/mmu-notifier-types.ts';
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

test('MADV_DONTNEED zaps anonymous memory with one CLEAR per VMA under mmap_lock(R); frames freed after start and the flush; reads see zeros', () => {
  const seen: Seen[] = [];
  let a = 0;
  const r = runMm(function* (m) {
    const mm = m.createMm();
    a = yield* mmap(mm, { len: 2 * P, prot: RW, flags: ANON });
    yield* mmap(mm, { addr: a + 2 * P, len: 2 * P, prot: PROT_READ, flags: ANON | MAP_FIXED });
    for (let i = 0; i < 2; i++) yield* cpuWriteU32(mm, a + i * P, 40 + i);
    yield* cpuReadU32(mm, a + 2 * P);
    yield* probe(mm, seen);
    yield* madvise(mm, a + P, 2 * P, MADV_DONTNEED);
    assert.equal(m.phys.usedFrames, 1);
    assert.deepEqual(
      mm.addressesIn(a, a + 4 * P).map((x) => x - a),
      [0],
    );
    assert.equal(mm.vmas.length, 2, 'VMAs are untouched');
    assert.equal(yield* cpuReadU32(mm, a), 40);
    assert.equal(yield* cpuReadU32(mm, a + P), 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [
    { event: 'CLEAR', start: a + P, end: a + 2 * P, mmapHeld: true, mmapWrite: false, atomic: 0 },
    {
      event: 'CLEAR',
      start: a + 2 * P,
      end: a + 3 * P,
      mmapHeld: true,
      mmapWrite: false,
      atomic: 0,
    },
  ]);
  assertPaired(r.rec);
  const ev = r.rec.events;
  const first = eventsOf(r.rec, 'mmu-start')[0]!;
  const done = ev.findIndex((e) => e.type === 'mmu-start-done' && e.id === first.id);
  const flush = ev.findIndex((e, i) => i > done && e.type === 'tlb-flush');
  const free = ev.findIndex((e) => e.type === 'page-free');
  assert.ok(done >= 0 && done < flush && flush < free, 'start returned, TLB flushed, then freed');
});

test('MADV_DONTNEED on a private file mapping drops the COW copy: the file contents come back', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const f = m.createFile('data', { size: 2 * P });
    yield* f.pwrite(0, new Uint8Array([7, 0, 0, 0]));
    const p = yield* mmap(mm, { len: 2 * P, prot: RW, flags: MAP_PRIVATE, file: f });
    const s = yield* mmap(mm, { len: 2 * P, prot: RW, flags: MAP_SHARED, file: f });
    assert.equal(yield* cpuReadU32(mm, p), 7);
    yield* cpuWriteU32(mm, p, 8);
    yield* cpuWriteU32(mm, s + P, 9);
    yield* madvise(mm, p, 2 * P, MADV_DONTNEED);
    yield* madvise(mm, s, 2 * P, MADV_DONTNEED);
    assert.equal(mm.pt.size, 0);
    assert.equal(yield* cpuReadU32(mm, p), 7, 're-read from the page cache');
    assert.equal(yield* cpuReadU32(mm, s + P), 9, 'shared writes live in the page cache');
  });
  assert.equal(r.ok, true, r.bug?.message);
  assertPaired(r.rec);
});

test('madvise over holes applies to the mapped parts, then fails with ENOMEM', () => {
  let a = 0;
  const r = runMm(function* (m) {
    const mm = m.createMm();
    a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
    yield* mmap(mm, { addr: a + 2 * P, len: P, prot: RW, flags: ANON | MAP_FIXED });
    yield* cpuWriteU32(mm, a, 1);
    yield* cpuWriteU32(mm, a + 2 * P, 2);
    try {
      yield* madvise(mm, a - P, 5 * P, MADV_DONTNEED);
      assert.fail('expected ENOMEM');
    } catch (e) {
      assert.ok(isErrno(e, 'ENOMEM'), String(e));
    }
    assert.equal(mm.pt.size, 0);
    assert.equal(m.phys.usedFrames, 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(
    eventsOf(r.rec, 'mmu-start').map((e) => [
      e.event,
      (e.start as number) - a,
      (e.end as number) - a,
    ]),
    [
      ['CLEAR', 0, P],
      ['CLEAR', 2 * P, 3 * P],
    ],
  );
});

test('MADV_FREE makes pages clean and lazyfree; reclaim discards them unless written again, swap entries go', () => {
  const seen: Seen[] = [];
  let a = 0;
  const r = runMm(function* (m) {
    const mm = m.createMm();
    a = yield* mmap(mm, { len: 3 * P, prot: RW, flags: ANON });
    // Page 2 is swapped out before the advice.
    yield* cpuWriteU32(mm, a + 2 * P, 3);
    yield* shrinkMemory(m, 1);
    assert.equal(mm.pte(a + 2 * P)?.kind, 'swap');
    assert.equal(m.swap.used, 1);
    yield* cpuWriteU32(mm, a, 1);
    yield* cpuWriteU32(mm, a + P, 2);
    yield* probe(mm, seen);
    yield* madvise(mm, a, 3 * P, MADV_FREE);
    for (const i of [0, 1]) {
      const pte = mm.pte(a + i * P)!;
      assert.deepEqual(
        [pte.dirty, pte.accessed, pte.writable, pte.page!.dirty, pte.page!.lazyfree],
        [false, false, true, false, true],
      );
    }
    assert.equal(mm.pte(a + 2 * P), undefined, 'the swap entry is dropped');
    assert.equal(m.swap.used, 0);
    // A write after MADV_FREE makes the page worth keeping again.
    yield* cpuWriteU32(mm, a + P, 22);
    assert.equal(mm.pte(a + P)!.page!.lazyfree, false);
    const freed = yield* shrinkMemory(m, 2);
    assert.equal(freed, 2);
    assert.equal(mm.pte(a), undefined, 'the clean lazyfree page was discarded, not swapped');
    assert.equal(mm.pte(a + P)?.kind, 'swap');
    assert.equal(m.swap.used, 1);
    assert.equal(yield* cpuReadU32(mm, a), 0);
    assert.equal(yield* cpuReadU32(mm, a + P), 22);
    assert.equal(yield* cpuReadU32(mm, a + 2 * P), 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen[0], {
    event: 'CLEAR',
    start: a,
    end: a + 3 * P,
    mmapHeld: true,
    mmapWrite: false,
    atomic: 0,
  });
  assertPaired(r.rec);
  // The cleaned entries are flushed inside the invalidation.
  const ev = r.rec.events;
  const start = eventsOf(r.rec, 'mmu-start').find((e) => e.start === a && e.end === a + 3 * P)!;
  const done = ev.findIndex((e) => e.type === 'mmu-start-done' && e.id === start.id);
  const end = ev.findIndex((e) => e.type === 'mmu-end' && e.id === start.id);
  assert.deepEqual(
    ev
      .slice(done, end)
      .filter((e) => e.type === 'tlb-flush')
      .map((e) => [e.start, e.end]),
    [[a, a + 2 * P]],
  );
});

test('madvise rejects bad input with the errno Linux returns and changes nothing', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
    const l = yield* mmap(mm, { addr: a + P, len: P, prot: RW, flags: ANON | MAP_FIXED });
    const x = yield* mmap(mm, { addr: a + 2 * P, len: P, prot: RW, flags: ANON | MAP_FIXED });
    const sh = yield* mmap(mm, { len: P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    const f = m.createFile('f', { size: P });
    const fp = yield* mmap(mm, { len: P, prot: RW, flags: MAP_PRIVATE, file: f });
    for (const addr of [a, l, x, sh, fp]) yield* cpuWriteU32(mm, addr, 5);
    mm.findVma(l)!.flags |= VM_LOCKED;
    mm.findVma(x)!.flags |= VM_PFNMAP;
    const cases: [number, number, number, string][] = [
      [a + 1, P, MADV_DONTNEED, 'EINVAL'],
      [-P, P, MADV_DONTNEED, 'EINVAL'],
      [a, -1, MADV_DONTNEED, 'EINVAL'],
      [a, P, 99, 'EINVAL'],
      [a, P, 1.5, 'EINVAL'],
      [a, 2 * P, MADV_DONTNEED, 'EINVAL'],
      [a, 3 * P, MADV_FREE, 'EINVAL'],
      [x, P, MADV_DONTNEED, 'EINVAL'],
      [sh, P, MADV_FREE, 'EINVAL'],
      [fp, P, MADV_FREE, 'EINVAL'],
    ];
    const before = snapshot(mm);
    for (const [addr, len, advice, code] of cases) {
      try {
        yield* madvise(mm, addr, len, advice);
        assert.fail(`expected ${code} for ${addr - a}, ${len}, ${advice}`);
      } catch (e) {
        assert.ok(isErrno(e, code as 'EINVAL'), `${addr - a}, ${len}, ${advice}: ${String(e)}`);
      }
      assert.equal(snapshot(mm), before);
    }
    yield* madvise(mm, a, 0, MADV_DONTNEED);
    assert.equal(snapshot(mm), before, 'a zero length changes nothing');
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(eventsOf(r.rec, 'mmu-start').length, 0);
});

test('a MADV_FREE page written while reclaim unmaps it is kept, not discarded', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
    yield* cpuWriteU32(mm, a, 1);
    yield* madvise(mm, a, P, MADV_FREE);
    // The write lands after reclaim chose to discard the clean lazyfree page, inside the
    // CLEAR invalidation of try_to_unmap_one() and before its PTL section.
    let armed = true;
    yield* mmuNotifierRegister(
      new MmuNotifier({
        *invalidateRangeStart(_s, range) {
          if (armed && range.event === 'CLEAR') {
            armed = false;
            yield* cpuWriteU32(mm, a, 5);
          }
          return 0;
        },
      }),
      mm,
    );
    yield* shrinkMemory(m, 1);
    assert.equal(armed, false, 'reclaim reached the page');
    assert.equal(yield* cpuReadU32(mm, a), 5);
  });
  assert.equal(r.ok, true, r.bug?.message);
});
