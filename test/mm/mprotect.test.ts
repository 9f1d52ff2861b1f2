import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isErrno } from '../../src/index.ts';
import {
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  TASK_SIZE,
  VM_EXEC,
  VM_READ,
  VM_WRITE,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mprotect } from '../../src/mm/mprotect.ts';
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

test('mprotect splits, write-protects and PROT_NONEs present entries; adding rights back does not make COW entries writable', () => {
  let a = 0;
  const r = runMm(function* (m) {
    const mm = m.createMm();
    a = yield* mmap(mm, { len: 4 * P, prot: RW, flags: ANON });
    for (let i = 0; i < 4; i++) yield* cpuWriteU32(mm, a + i * P, 10 + i);
    yield* mprotect(mm, a + P, 2 * P, PROT_READ);
    assert.deepEqual(
      mm.vmas.map((v) => [v.start - a, v.end - a, v.flags & (VM_READ | VM_WRITE | VM_EXEC)]),
      [
        [0, P, VM_READ | VM_WRITE],
        [P, 3 * P, VM_READ],
        [3 * P, 4 * P, VM_READ | VM_WRITE],
      ],
    );
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => mm.pte(a + i * P)?.writable),
      [true, false, false, true],
    );
    assert.equal(yield* cpuReadU32(mm, a + P), 11);
    try {
      yield* cpuWriteU32(mm, a + P, 1);
      assert.fail('write to a read-only page must fault');
    } catch (e) {
      assert.ok(isErrno(e, 'EFAULT'), String(e));
    }
    // PROT_NONE: no access at all, data kept.
    yield* mprotect(mm, a + P, P, PROT_NONE);
    assert.equal(mm.pte(a + P)?.readable, false);
    try {
      yield* cpuReadU32(mm, a + P);
      assert.fail('read of a PROT_NONE page must fault');
    } catch (e) {
      assert.ok(isErrno(e, 'EFAULT'), String(e));
    }
    // Back to read-write: readable again, still write-protected until the write fault.
    yield* mprotect(mm, a + P, 2 * P, RW);
    assert.deepEqual(
      [mm.pte(a + P)?.readable, mm.pte(a + P)?.writable, mm.pte(a + 2 * P)?.writable],
      [true, false, false],
    );
    const frames = m.phys.usedFrames;
    yield* cpuWriteU32(mm, a + P, 21);
    assert.equal(mm.pte(a + P)?.writable, true);
    assert.equal(m.phys.usedFrames, frames, 'an exclusive anonymous page is reused, not copied');
    assert.equal(yield* cpuReadU32(mm, a + P), 21);
    assert.equal(yield* cpuReadU32(mm, a + 2 * P), 12);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assertPaired(r.rec);
  const starts = eventsOf(r.rec, 'mmu-start');
  assert.deepEqual(
    starts.map((e) => [e.event, (e.start as number) - a, (e.end as number) - a]),
    [
      ['PROTECTION_VMA', P, 3 * P],
      ['PROTECTION_VMA', P, 2 * P],
      ['PROTECTION_VMA', P, 2 * P],
      ['PROTECTION_VMA', 2 * P, 3 * P],
    ],
  );
  // Changed entries are flushed after the start returned and before the end; the last
  // invalidation changed nothing (the entries stay write-protected), so it has no flush.
  const ev = r.rec.events;
  const flushes = starts.map((s) => {
    const done = ev.findIndex((e) => e.type === 'mmu-start-done' && e.id === s.id);
    const end = ev.findIndex((e) => e.type === 'mmu-end' && e.id === s.id);
    return ev
      .slice(done, end)
      .filter((e) => e.type === 'tlb-flush')
      .map((e) => [(e.start as number) - a, (e.end as number) - a]);
  });
  assert.deepEqual(flushes, [[[P, 3 * P]], [[P, 2 * P]], [[P, 2 * P]], []]);
  assert.equal(eventsOf(r.rec, 'page-free').length, 0);
});

test('mprotect starts its invalidation with mmap_lock held for write and no spinlock, only over populated VMAs', () => {
  const seen: Seen[] = [];
  let a = 0;
  const r = runMm(function* (m) {
    const mm = m.createMm();
    a = yield* mmap(mm, { len: 2 * P, prot: RW, flags: ANON });
    yield* mmap(mm, { addr: a - 2 * P, len: 2 * P, prot: RW, flags: ANON | MAP_FIXED });
    yield* probe(mm, seen);
    yield* cpuWriteU32(mm, a, 1);
    // Two VMAs, only the upper one populated.
    yield* mprotect(mm, a - 2 * P, 4 * P, PROT_READ | PROT_EXEC);
    assert.equal(mm.vmas.length, 2);
    for (const v of mm.vmas)
      assert.equal(v.flags & (VM_READ | VM_WRITE | VM_EXEC), VM_READ | VM_EXEC);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [
    {
      event: 'PROTECTION_VMA',
      start: a,
      end: a + 2 * P,
      mmapHeld: true,
      mmapWrite: true,
      atomic: 0,
    },
  ]);
  assertPaired(r.rec);
});

test('mprotect calls ->open for the parts a split creates', () => {
  const opened: number[] = [];
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 3 * P, prot: RW, flags: ANON });
    mm.findVma(a)!.ops = {
      name: 'probe',
      *open(v) {
        opened.push(v.start - a);
      },
    };
    yield* mprotect(mm, a + P, P, PROT_READ);
    assert.equal(mm.vmas.length, 3);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(opened.sort(), [P, 2 * P]);
});

test('mprotect refuses a writable shared mapping of a read-only file (EACCES) but allows a private one', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const f = m.createFile('ro', { size: 2 * P, writable: false });
    const s = yield* mmap(mm, { len: 2 * P, prot: PROT_READ, flags: MAP_SHARED, file: f });
    yield* cpuReadU32(mm, s);
    const before = snapshot(mm);
    try {
      yield* mprotect(mm, s, P, RW);
      assert.fail('expected EACCES');
    } catch (e) {
      assert.ok(isErrno(e, 'EACCES'), String(e));
    }
    assert.equal(snapshot(mm), before);
    const p = yield* mmap(mm, { len: 2 * P, prot: PROT_READ, flags: MAP_PRIVATE, file: f });
    yield* mprotect(mm, p, 2 * P, RW);
    yield* cpuWriteU32(mm, p, 5);
    assert.equal(yield* cpuReadU32(mm, p), 5);
    assert.equal(yield* cpuReadU32(mm, s), 0, 'the private write did not reach the file');
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('mprotect rejects bad input with the errno Linux returns and changes nothing', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * P, prot: RW, flags: ANON });
    const b = yield* mmap(mm, { addr: a + 3 * P, len: P, prot: RW, flags: ANON | MAP_FIXED });
    yield* cpuWriteU32(mm, a, 1);
    yield* cpuWriteU32(mm, b, 2);
    const before = snapshot(mm);
    const cases: [number, number, number, string][] = [
      [a + 1, P, PROT_READ, 'EINVAL'],
      [-P, P, PROT_READ, 'EINVAL'],
      [a, -1, PROT_READ, 'EINVAL'],
      [a, P, 0x8, 'EINVAL'],
      [a, P, 0.5, 'EINVAL'],
      [a, 4 * P, PROT_READ, 'ENOMEM'],
      [a - P, 2 * P, PROT_READ, 'ENOMEM'],
      [TASK_SIZE - P, 2 * P, PROT_READ, 'ENOMEM'],
    ];
    for (const [addr, len, prot, code] of cases) {
      try {
        yield* mprotect(mm, addr, len, prot);
        assert.fail(`expected ${code} for ${addr - a}, ${len}, ${prot}`);
      } catch (e) {
        assert.ok(isErrno(e, code as 'EINVAL'), `${addr - a}, ${len}, ${prot}: ${String(e)}`);
      }
      assert.equal(snapshot(mm), before);
    }
    yield* mprotect(mm, a, 0, PROT_NONE);
    assert.equal(snapshot(mm), before, 'a zero length changes nothing');
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(eventsOf(r.rec, 'mmu-start').filter((e) => e.event !== 'CLEAR').length, 0);
});
