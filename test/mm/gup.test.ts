import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isErrno } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
  VM_IO,
  VM_PFNMAP,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { fork } from '../../src/mm/fork.ts';
import { type GupOptions, getUserPages, unpinUserPages } from '../../src/mm/gup.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import type { Page } from '../../src/mm/page.ts';
import { runMm } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function* gup(mm: Mm, start: number, n: number, o: GupOptions = {}) {
  yield* mm.mmapLock.downRead();
  try {
    return yield* getUserPages(mm, start, n, o);
  } finally {
    mm.mmapLock.upRead();
  }
}

function u32(page: Page): number {
  const b = new Uint8Array(4);
  page.data.read(0, b, 0, 4);
  return new DataView(b.buffer).getInt32(0, true);
}

test('getUserPages faults pages in and takes a reference; pin and longterm also pin', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 3 * PAGE_SIZE, prot: RW, flags: ANON });
    yield* cpuWriteU32(mm, a, 9);
    const read = yield* gup(mm, a, 2);
    assert.equal(u32(read[0]!), 9);
    assert.equal(read[0]!.refcount, 2);
    assert.equal(read[0]!.pins, 0);
    assert.equal(read[1], m.phys.zeroPage, 'a read of untouched memory maps the zero page');
    const pinned = yield* gup(mm, a + PAGE_SIZE, 2, { write: true, longterm: true });
    assert.notEqual(pinned[0], m.phys.zeroPage, 'a write fault replaced the zero page');
    assert.equal(mm.pte(a + PAGE_SIZE)!.page, pinned[0]);
    assert.equal(mm.pte(a + 2 * PAGE_SIZE)!.writable, true);
    for (const p of pinned) {
      assert.equal(p.refcount, 2);
      assert.equal(p.pins, 1);
    }
    unpinUserPages(m, read);
    unpinUserPages(m, pinned, { longterm: true, dirty: true });
    assert.equal(read[0]!.refcount, 1);
    assert.equal(pinned[0]!.pins, 0);
    assert.equal(pinned[0]!.refcount, 1);
    yield* mmput(mm);
    assert.equal(m.phys.usedFrames, 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('a write GUP breaks COW after fork; a read pin unshares; the child keeps its data', () => {
  const r = runMm(function* (m) {
    const parent = m.createMm();
    const a = yield* mmap(parent, { len: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    yield* cpuWriteU32(parent, a, 1);
    yield* cpuWriteU32(parent, a + PAGE_SIZE, 2);
    const child = yield* fork(parent);
    const shared = parent.pte(a)!.page!;
    const [w] = yield* gup(parent, a, 1, { write: true });
    assert.notEqual(w, shared);
    assert.equal(parent.pte(a)!.page, w);
    assert.equal(child.pte(a)!.page, shared);
    const [p] = yield* gup(parent, a + PAGE_SIZE, 1, { pin: true });
    assert.equal(p!.mapcount, 1, 'the pinned page is exclusive to the parent');
    assert.equal(parent.pte(a + PAGE_SIZE)!.page, p);
    yield* cpuWriteU32(parent, a + PAGE_SIZE, 3);
    assert.equal(u32(p!), 3, 'the pin sees what the process writes');
    assert.equal(yield* cpuReadU32(child, a + PAGE_SIZE), 2);
    unpinUserPages(m, [w!]);
    unpinUserPages(m, [p!], { pin: true });
    yield* mmput(child);
    yield* mmput(parent);
    assert.equal(m.phys.usedFrames, 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('getUserPages validates its arguments and the VMAs, and changes nothing on error', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    const ro = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_READ, flags: ANON });
    const none = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_NONE, flags: ANON });
    const io = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: ANON });
    mm.findVma(io)!.flags |= VM_IO | VM_PFNMAP;
    const f = m.createFile('f', { size: PAGE_SIZE });
    const fileShared = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: f });
    yield* cpuWriteU32(mm, a, 1);
    const page = mm.pte(a)!.page!;
    const cases: [number, number, GupOptions, string][] = [
      [a + 1, 1, {}, 'EINVAL'],
      [a, 0, {}, 'EINVAL'],
      [a, -1, {}, 'EINVAL'],
      [a, 1.5, {}, 'EINVAL'],
      [a, 2 ** 53, {}, 'EINVAL'],
      [a, 1, { write: 1 } as unknown as GupOptions, 'EINVAL'],
      [TASK_SIZE - PAGE_SIZE, 2, {}, 'EFAULT'],
      [a, 3, { pin: true }, 'EFAULT'],
      [ro, 1, { write: true }, 'EFAULT'],
      [none, 1, {}, 'EFAULT'],
      [io, 1, {}, 'EFAULT'],
      [fileShared, 1, { write: true, longterm: true }, 'EFAULT'],
    ];
    for (const [start, n, o, code] of cases) {
      try {
        yield* gup(mm, start, n, o);
        assert.fail(`expected ${code} for ${start - a}, ${n}`);
      } catch (e) {
        assert.ok(isErrno(e, code as 'EINVAL'), `${start - a}, ${n}: ${String(e)}`);
      }
    }
    assert.equal(page.refcount, 1, 'the partial GUP of [a, a+3) dropped what it took');
    assert.equal(page.pins, 0);
    // A short-term write GUP of the shared file mapping is fine.
    const [fp] = yield* gup(mm, fileShared, 1, { write: true });
    unpinUserPages(m, [fp!]);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('getUserPages without mmap_lock is a kernel bug; so is unpinning a page never pinned', () => {
  const r1 = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: ANON });
    yield* getUserPages(mm, a, 1);
  });
  assert.equal(r1.ok, false);
  assert.equal(r1.bug?.rule, 'warn');
  assert.match(r1.bug!.message, /mmap_lock/);
  const r2 = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: ANON });
    const pages = yield* gup(mm, a, 1, { write: true });
    unpinUserPages(m, pages, { pin: true });
  });
  assert.equal(r2.bug?.rule, 'warn');
  assert.match(r2.bug!.message, /no pin/);
});

test('pinned pages survive reclaim under memory pressure; unpinned ones go to swap', () => {
  const r = runMm(
    function* (m) {
      const mm = m.createMm();
      const n = 40;
      const a = yield* mmap(mm, { len: n * PAGE_SIZE, prot: RW, flags: ANON });
      yield* cpuWriteU32(mm, a, 1000);
      const pinned = yield* gup(mm, a, 1, { write: true, longterm: true });
      for (let i = 1; i < n; i++) yield* cpuWriteU32(mm, a + i * PAGE_SIZE, 1000 + i);
      assert.ok(m.swap.used > 0, 'pressure pushed pages to swap');
      assert.equal(mm.pte(a)!.kind, 'page');
      assert.equal(mm.pte(a)!.page, pinned[0]);
      for (let i = 0; i < n; i++) assert.equal(yield* cpuReadU32(mm, a + i * PAGE_SIZE), 1000 + i);
      unpinUserPages(m, pinned, { longterm: true });
      yield* mmput(mm);
      assert.equal(m.phys.usedFrames, 0);
      assert.equal(m.swap.used, 0);
    },
    { machine: { frames: 12 } },
  );
  assert.equal(r.ok, true, r.bug?.message);
});
