import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explore, isErrno, join, type Kernel, KernelBug } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  VM_DONTCOPY,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { fork } from '../../src/mm/fork.ts';
import { getUserPages, unpinUserPages } from '../../src/mm/gup.ts';
import { Machine } from '../../src/mm/machine.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { shrinkMemory } from '../../src/mm/reclaim.ts';
import { eventsOf, runMm } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

test('fork: COW pages are shared read-only, and each side keeps its own data after a write', () => {
  const r = runMm(function* (m) {
    const parent = m.createMm();
    const a = yield* mmap(parent, { len: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    yield* cpuWriteU32(parent, a, 11);
    yield* cpuWriteU32(parent, a + PAGE_SIZE, 22);
    const child = yield* fork(parent);
    assert.equal(child.users, 1);
    const pp = parent.pte(a)!;
    const cp = child.pte(a)!;
    assert.equal(pp.page, cp.page, 'the same frame is mapped on both sides');
    assert.equal(pp.writable, false);
    assert.equal(cp.writable, false);
    assert.equal(pp.page!.mapcount, 2);
    assert.equal(pp.page!.refcount, 2);
    assert.equal(m.phys.usedFrames, 2);
    // The parent writes page 0, the child page 1: each write copies.
    yield* cpuWriteU32(parent, a, 12);
    yield* cpuWriteU32(child, a + PAGE_SIZE, 23);
    assert.equal(yield* cpuReadU32(parent, a), 12);
    assert.equal(yield* cpuReadU32(child, a), 11);
    assert.equal(yield* cpuReadU32(parent, a + PAGE_SIZE), 22);
    assert.equal(yield* cpuReadU32(child, a + PAGE_SIZE), 23);
    assert.equal(m.phys.usedFrames, 4);
    // The child's copy of page 0 is now exclusive: its write reuses the frame.
    const before = child.pte(a)!.page;
    yield* cpuWriteU32(child, a, 13);
    assert.equal(child.pte(a)!.page, before);
    assert.equal(yield* cpuReadU32(parent, a), 12);
    yield* mmput(child);
    yield* mmput(parent);
    assert.equal(m.phys.usedFrames, 0, 'every frame back after both exits');
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('fork: one PROTECTION_PAGE invalidation of the parent range per COW VMA with anon pages', () => {
  const r = runMm(function* (m) {
    const parent = m.createMm();
    const a = yield* mmap(parent, { len: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    const untouched = yield* mmap(parent, { len: PAGE_SIZE, prot: RW, flags: ANON });
    const zeroOnly = yield* mmap(parent, { len: PAGE_SIZE, prot: RW, flags: ANON });
    yield* cpuWriteU32(parent, a + PAGE_SIZE, 1);
    yield* cpuReadU32(parent, zeroOnly);
    const child = yield* fork(parent);
    assert.equal(child.vmas.length, 3);
    assert.equal(child.pte(untouched), undefined);
    // A VMA holding only the zero page has no anon_vma: nothing is copied, the child faults.
    assert.equal(child.pte(zeroOnly), undefined);
    assert.equal(yield* cpuReadU32(child, a + PAGE_SIZE), 1);
    yield* mmput(child);
    yield* mmput(parent);
  });
  assert.equal(r.ok, true, r.bug?.message);
  const starts = eventsOf(r.rec, 'mmu-start').filter((e) => e.event === 'PROTECTION_PAGE');
  assert.equal(starts.length, 1);
  const s = starts[0]!;
  const end = eventsOf(r.rec, 'mmu-end').find((e) => e.id === s.id)!;
  assert.equal(end.start, s.start);
  assert.equal(end.end, s.end);
  assert.equal((s.end as number) - (s.start as number), 4 * PAGE_SIZE);
  // The parent's TLB is flushed over the range before the end.
  const iStart = r.rec.events.findIndex((e) => e.type === 'mmu-start' && e.id === s.id);
  const iEnd = r.rec.events.findIndex((e) => e.type === 'mmu-end' && e.id === s.id);
  const iFlush = r.rec.events.findIndex(
    (e, i) => i > iStart && e.type === 'tlb-flush' && e.start === s.start && e.end === s.end,
  );
  assert.ok(iStart < iFlush && iFlush < iEnd, 'start, flush, end');
});

test('fork: shared mappings are not copied, VM_DONTCOPY VMAs are left out, the zero page is shared', () => {
  const r = runMm(function* (m) {
    const parent = m.createMm();
    const sh = yield* mmap(parent, {
      len: PAGE_SIZE,
      prot: RW,
      flags: MAP_SHARED | MAP_ANONYMOUS,
    });
    const priv = yield* mmap(parent, { len: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    const noCopy = yield* mmap(parent, { len: PAGE_SIZE, prot: RW, flags: ANON });
    parent.findVma(noCopy)!.flags |= VM_DONTCOPY;
    yield* cpuWriteU32(parent, sh, 5);
    yield* cpuWriteU32(parent, priv, 6);
    yield* cpuReadU32(parent, priv + PAGE_SIZE);
    yield* cpuWriteU32(parent, noCopy, 7);
    const child = yield* fork(parent);
    assert.equal(child.findVma(noCopy), undefined);
    assert.equal(child.pte(sh), undefined, 'shared: the child faults from the page cache');
    assert.equal(child.pte(priv + PAGE_SIZE)?.page, m.phys.zeroPage);
    assert.equal(yield* cpuReadU32(child, sh), 5);
    // Writes through a shared mapping are seen by both.
    yield* cpuWriteU32(child, sh, 8);
    assert.equal(yield* cpuReadU32(parent, sh), 8);
    assert.equal(parent.findVma(sh)!.file!.mappings.size, 2);
    yield* mmput(child);
    assert.equal(parent.findVma(sh)!.file!.mappings.size, 1);
    yield* mmput(parent);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('fork: swap entries are duplicated; both sides swap the data back in; slots are freed at exit', () => {
  const r = runMm(function* (m) {
    const parent = m.createMm();
    const a = yield* mmap(parent, { len: 3 * PAGE_SIZE, prot: RW, flags: ANON });
    for (let i = 0; i < 3; i++) yield* cpuWriteU32(parent, a + i * PAGE_SIZE, 100 + i);
    yield* shrinkMemory(m, 3);
    assert.equal(m.phys.usedFrames, 0);
    assert.equal(m.swap.used, 3);
    const child = yield* fork(parent);
    assert.equal(child.pte(a)?.kind, 'swap');
    assert.equal(m.swap.used, 3, 'the slots are shared, not copied');
    for (let i = 0; i < 3; i++) {
      assert.equal(yield* cpuReadU32(child, a + i * PAGE_SIZE), 100 + i);
      assert.equal(yield* cpuReadU32(parent, a + i * PAGE_SIZE), 100 + i);
    }
    assert.equal(m.swap.used, 0);
    yield* cpuWriteU32(child, a, 1);
    assert.equal(yield* cpuReadU32(parent, a), 100);
    yield* mmput(parent);
    yield* mmput(child);
    assert.equal(m.phys.usedFrames, 0);
    assert.equal(m.swap.used, 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('fork: a pinned anonymous page is copied for the child; the pin keeps seeing the parent', () => {
  const r = runMm(function* (m) {
    const parent = m.createMm();
    const a = yield* mmap(parent, { len: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    yield* cpuWriteU32(parent, a, 1);
    yield* cpuWriteU32(parent, a + PAGE_SIZE, 2);
    yield* parent.mmapLock.downRead();
    const pinned = yield* getUserPages(parent, a, 1, { write: true, longterm: true });
    parent.mmapLock.upRead();
    const child = yield* fork(parent);
    assert.equal(parent.pte(a)!.writable, true, 'the pinned page stays writable in the parent');
    assert.notEqual(child.pte(a)!.page, pinned[0]);
    assert.equal(parent.pte(a + PAGE_SIZE)!.writable, false, 'the unpinned page is COW-shared');
    yield* cpuWriteU32(parent, a, 3);
    const dma = new Uint8Array(4);
    pinned[0]!.data.read(0, dma, 0, 4);
    assert.equal(new DataView(dma.buffer).getInt32(0, true), 3, 'the device sees the write');
    assert.equal(yield* cpuReadU32(child, a), 1);
    unpinUserPages(m, pinned, { longterm: true });
    yield* mmput(child);
    yield* mmput(parent);
    assert.equal(m.phys.usedFrames, 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('fork rejects an exited address space and changes nothing', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    yield* mmput(mm);
    const before = m.mms.length;
    try {
      yield* fork(mm);
      assert.fail('expected EINVAL');
    } catch (e) {
      assert.ok(isErrno(e, 'EINVAL'), String(e));
    }
    assert.equal(m.mms.length, before);
    try {
      yield* fork({} as never);
      assert.fail('expected EINVAL');
    } catch (e) {
      assert.ok(isErrno(e, 'EINVAL'), String(e));
    }
  });
  assert.equal(r.ok, true, r.bug?.message);
});

/**
 * A parent thread writes while another forks: the child must see a snapshot (the old value when
 * the write had not started when fork returned), the parent its last write, and every frame
 * comes back at the end.
 */
function forkRaceWorld(k: Kernel): void {
  const m = new Machine(k, { frames: 64 });
  const parent = m.createMm();
  let addr = 0;
  let childSaw = -1;
  let parentSaw = -1;
  let writeStarted = false;
  let mustBeOld = false;
  const setup = k.spawn('setup', function* () {
    addr = yield* mmap(parent, { len: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    yield* cpuWriteU32(parent, addr, 1);
    yield* cpuWriteU32(parent, addr + PAGE_SIZE, 1);
  });
  k.spawn('writer', function* () {
    yield* join(setup);
    writeStarted = true;
    yield* cpuWriteU32(parent, addr, 2);
    parentSaw = yield* cpuReadU32(parent, addr);
  });
  k.spawn('forker', function* () {
    yield* join(setup);
    const child = yield* fork(parent);
    mustBeOld = !writeStarted;
    childSaw = yield* cpuReadU32(child, addr);
    yield* cpuWriteU32(child, addr + PAGE_SIZE, 9);
    yield* mmput(child);
  });
  k.onQuiescence(() => {
    if (childSaw !== 1 && (mustBeOld || childSaw !== 2))
      throw new KernelBug(
        'fork-snapshot',
        `child read ${childSaw} (old value required: ${mustBeOld})`,
      );
    if (parentSaw !== 2) throw new KernelBug('fork-cow', `parent read ${parentSaw}, expected 2`);
    if (m.phys.usedFrames !== 2)
      throw new KernelBug('leak', `${m.phys.usedFrames} frames in use, expected the parent's 2`);
  });
}

test('fork racing a parent write: snapshot semantics, no leak (pct, seed 1, 300 runs)', () => {
  const res = explore(forkRaceWorld, { strategy: 'pct', seed: 1, runs: 300 });
  assert.equal(res.failure, null, res.failure?.bug.message);
  assert.equal(res.runs, 300);
});
