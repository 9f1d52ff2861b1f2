import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HMM_DMIRROR_READ } from '../../src/drivers/dmirror/uapi.ts';
import { type Co, isErrno } from '../../src/index.ts';
import {
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PMD_SIZE,
  PROT_READ,
  VM_HUGEPAGE,
  VM_NOHUGEPAGE,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { makeDeviceExclusive } from '../../src/mm/device-exclusive.ts';
import { mmput } from '../../src/mm/exit.ts';
import { fork } from '../../src/mm/fork.ts';
import { getUserPages, unpinUserPages } from '../../src/mm/gup.ts';
import { hmmPfnMapOrder, hmmRange, hmmRangeFault } from '../../src/mm/hmm.ts';
import type { Machine } from '../../src/mm/machine.ts';
import { madvise } from '../../src/mm/madvise.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmdrop, mmgrab } from '../../src/mm/mm-refs.ts';
import { mmap } from '../../src/mm/mmap.ts';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalReadBegin,
} from '../../src/mm/mmu-interval-notifier.ts';
import { MmuIntervalNotifier } from '../../src/mm/mmu-interval-notifier-types.ts';
import { mprotect } from '../../src/mm/mprotect.ts';
import { mremap } from '../../src/mm/mremap.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { oomReap } from '../../src/mm/oom-reaper.ts';
import { unlockPage } from '../../src/mm/page.ts';
import { shrinkMemory } from '../../src/mm/reclaim.ts';
import { cmd, hmmTest, mirrorBuffer, ok } from '../acceptance/hmm-harness.ts';
import { ANON, assertPaired, eventsOf, P, RW, runMm } from './helpers.ts';

const NR = PMD_SIZE / P;

/** A 2 MiB-aligned MADV_HUGEPAGE range of `pmds` PMDs (inside a mapping one PMD larger). */
function* thpRange(mm: Mm, pmds = 1, prot = RW): Co<number> {
  const region = yield* mmap(mm, { len: (pmds + 1) * PMD_SIZE, prot, flags: ANON });
  const ptr = region + PMD_SIZE - (region % PMD_SIZE);
  yield* madvise(mm, ptr, pmds * PMD_SIZE, MADV_HUGEPAGE);
  return ptr;
}

/** Every huge PMD maps 512 entries of one kind with the same rights (the model's invariant). */
function assertUniform(mm: Mm): void {
  for (const i of mm.hugePmds) {
    const first = mm.pte(i * PMD_SIZE);
    assert.ok(first !== undefined, `huge PMD ${i} has entries`);
    for (let j = 0; j < NR; j++) {
      const pte = mm.pte(i * PMD_SIZE + j * P);
      assert.equal(pte?.kind, first.kind, `huge PMD ${i} entry ${j}`);
      assert.equal(pte?.writable, first.writable, `huge PMD ${i} entry ${j} rights`);
    }
  }
}

/** [event, start − base, end − base] of each invalidation start. */
function starts(r: ReturnType<typeof runMm>, base: number) {
  return eventsOf(r.rec, 'mmu-start').map((e) => [
    e.event,
    (e.start as number) - base,
    (e.end as number) - base,
  ]);
}

test('a write fault in a MADV_HUGEPAGE range maps one THP; a read fault the huge zero page', () => {
  const r = runMm(function* (m: Machine) {
    const mm = m.createMm();
    const ptr = yield* thpRange(mm, 2);
    const used = m.phys.usedFrames;
    yield* cpuWriteU32(mm, ptr + 5 * P, 7);
    assert.equal(mm.pmdHuge(ptr), true);
    assert.equal(m.phys.usedFrames - used, NR, 'one folio of 512 frames');
    assert.equal(mm.pte(ptr + 511 * P)?.writable, true);
    assert.equal(yield* cpuReadU32(mm, ptr + 5 * P), 7);
    assert.equal(yield* cpuReadU32(mm, ptr + PMD_SIZE + 3 * P), 0);
    assert.equal(mm.pmdHuge(ptr + PMD_SIZE), true);
    assert.equal(m.phys.usedFrames - used, NR, 'the huge zero page takes no frame');
    const zero = mm.pte(ptr + PMD_SIZE)!.page!;
    assert.equal(zero.kind, 'zero');
    assert.notEqual(zero, m.phys.zeroPage);
    assert.equal(mm.pte(ptr + PMD_SIZE)?.writable, false);
    assertUniform(mm);
    yield* mmput(mm);
    assert.equal(m.phys.usedFrames, used);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('no THP outside MADV_HUGEPAGE, after MADV_NOHUGEPAGE, in a shared mapping, or without 512 free frames', () => {
  const r = runMm(function* (m: Machine) {
    const mm = m.createMm();
    const plain = yield* mmap(mm, { len: 2 * PMD_SIZE, prot: RW, flags: ANON });
    const aligned = plain + PMD_SIZE - (plain % PMD_SIZE);
    yield* cpuWriteU32(mm, aligned, 1);
    assert.equal(mm.pmdHuge(aligned), false);
    const ptr = yield* thpRange(mm);
    yield* madvise(mm, ptr, PMD_SIZE, MADV_NOHUGEPAGE);
    const vma = mm.findVma(ptr)!;
    assert.equal(vma.flags & (VM_HUGEPAGE | VM_NOHUGEPAGE), VM_NOHUGEPAGE);
    assert.equal([vma.start, vma.end].join(), [ptr, ptr + PMD_SIZE].join(), 'split to the range');
    yield* cpuWriteU32(mm, ptr, 1);
    assert.equal(mm.pmdHuge(ptr), false);
    const shared = yield* mmap(mm, { len: 2 * PMD_SIZE, prot: RW, flags: MAP_SHARED | 0x20 });
    const s = shared + PMD_SIZE - (shared % PMD_SIZE);
    yield* madvise(mm, s, PMD_SIZE, MADV_HUGEPAGE);
    yield* cpuWriteU32(mm, s, 1);
    assert.equal(mm.pmdHuge(s), false);
  });
  assert.equal(r.ok, true, r.bug?.message);
  // With fewer than 512 free frames the fault falls back to a small page.
  const low = runMm(
    function* (m: Machine) {
      const mm = m.createMm();
      const ptr = yield* thpRange(mm);
      yield* cpuWriteU32(mm, ptr, 3);
      assert.equal(mm.pmdHuge(ptr), false);
      assert.equal(yield* cpuReadU32(mm, ptr), 3);
    },
    { machine: { frames: NR - 1 } },
  );
  assert.equal(low.ok, true, low.bug?.message);
});

test('a write to the huge zero page splits its PMD (CLEAR over 2 MiB, zero page PTEs), then copies one page', () => {
  let base = 0;
  const r = runMm(function* (m: Machine) {
    const mm = m.createMm();
    base = yield* thpRange(mm);
    yield* cpuReadU32(mm, base);
    yield* cpuWriteU32(mm, base + 3 * P, 9);
    assert.equal(mm.pmdHuge(base), false);
    assert.equal(mm.pte(base)?.page, m.phys.zeroPage);
    assert.equal(mm.pte(base + 3 * P)?.page?.kind, 'anon');
    assert.equal(yield* cpuReadU32(mm, base + 3 * P), 9);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assertPaired(r.rec);
  assert.deepEqual(starts(r, base), [
    ['CLEAR', 0, PMD_SIZE],
    ['CLEAR', 3 * P, 4 * P],
  ]);
});

test('a partial munmap, mprotect or MADV_DONTNEED splits the PMD first, with its own CLEAR of the 2 MiB', () => {
  let base = 0;
  const r = runMm(function* (m: Machine) {
    const mm = m.createMm();
    base = yield* thpRange(mm, 3);
    for (let i = 0; i < 3; i++) yield* cpuWriteU32(mm, base + i * PMD_SIZE, i + 1);
    yield* munmap(mm, base + 8 * P, 8 * P);
    yield* mprotect(mm, base + PMD_SIZE, 8 * P, PROT_READ);
    yield* madvise(mm, base + 2 * PMD_SIZE, 8 * P, MADV_DONTNEED);
    assert.deepEqual(
      [0, 1, 2].map((i) => mm.pmdHuge(base + i * PMD_SIZE)),
      [false, false, false],
    );
    assert.equal(yield* cpuReadU32(mm, base), 1);
    assert.equal(yield* cpuReadU32(mm, base + PMD_SIZE), 2);
    assert.equal(yield* cpuReadU32(mm, base + 2 * PMD_SIZE), 0, 'DONTNEED dropped the data');
    assert.equal(mm.pte(base + PMD_SIZE + 8 * P)?.writable, true);
    assertUniform(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assertPaired(r.rec);
  assert.deepEqual(starts(r, base), [
    ['CLEAR', 0, PMD_SIZE],
    ['UNMAP', 8 * P, 16 * P],
    ['CLEAR', PMD_SIZE, 2 * PMD_SIZE],
    ['PROTECTION_VMA', PMD_SIZE, PMD_SIZE + 8 * P],
    ['CLEAR', 2 * PMD_SIZE, 3 * PMD_SIZE],
    ['CLEAR', 2 * PMD_SIZE, 2 * PMD_SIZE + 8 * P],
  ]);
});

test('whole-PMD munmap and mprotect keep the mapping huge: no split, the folio freed at once', () => {
  const r = runMm(function* (m: Machine) {
    const mm = m.createMm();
    const ptr = yield* thpRange(mm, 2);
    yield* cpuWriteU32(mm, ptr, 1);
    yield* cpuWriteU32(mm, ptr + PMD_SIZE, 2);
    yield* mprotect(mm, ptr, PMD_SIZE, PROT_READ);
    assert.equal(mm.pmdHuge(ptr), true);
    assert.equal(mm.pte(ptr + 100 * P)?.writable, false);
    const used = m.phys.usedFrames;
    yield* munmap(mm, ptr + PMD_SIZE, PMD_SIZE);
    assert.equal(used - m.phys.usedFrames, NR);
    assert.deepEqual([...mm.hugePmds], [ptr / PMD_SIZE]);
    // An exclusive THP write-protected by mprotect is made writable whole on the next write.
    yield* mprotect(mm, ptr, PMD_SIZE, RW);
    yield* cpuWriteU32(mm, ptr + 4 * P, 5);
    assert.equal(mm.pmdHuge(ptr), true);
    assert.equal(mm.pte(ptr + 511 * P)?.writable, true);
    assertUniform(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('fork shares a THP write-protected; a write splits the writer’s PMD and copies one page; a pinned THP is split at fork', () => {
  const r = runMm(function* (m: Machine) {
    const parent = m.createMm();
    const ptr = yield* thpRange(parent, 2);
    yield* cpuWriteU32(parent, ptr + P, 11);
    yield* cpuWriteU32(parent, ptr + PMD_SIZE, 12);
    yield* parent.mmapLock.downRead();
    const pinned = yield* getUserPages(parent, ptr + PMD_SIZE, 1, { write: true, pin: true });
    parent.mmapLock.upRead();
    const child = yield* fork(parent);
    assert.equal(child.pmdHuge(ptr), true);
    assert.equal(parent.pte(ptr)?.writable, false);
    assert.equal(parent.pmdHuge(ptr + PMD_SIZE), false, 'the pinned THP was split');
    assert.notEqual(child.pte(ptr + PMD_SIZE)?.page, parent.pte(ptr + PMD_SIZE)?.page);
    yield* cpuWriteU32(parent, ptr + P, 21);
    assert.equal(parent.pmdHuge(ptr), false);
    assert.equal(child.pmdHuge(ptr), true);
    assert.equal(yield* cpuReadU32(child, ptr + P), 11);
    assert.equal(yield* cpuReadU32(parent, ptr + P), 21);
    assert.equal(parent.pte(ptr + 2 * P)?.page, child.pte(ptr + 2 * P)?.page);
    assertUniform(parent);
    assertUniform(child);
    unpinUserPages(m, pinned, { pin: true });
    yield* mmput(child);
    yield* mmput(parent);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('mremap moves a huge PMD whole to an aligned address and splits it for any other', () => {
  const r = runMm(function* (m: Machine) {
    const mm = m.createMm();
    const space = yield* mmap(mm, { len: 8 * PMD_SIZE, prot: RW, flags: ANON });
    const a = space + PMD_SIZE - (space % PMD_SIZE);
    yield* munmap(mm, a + PMD_SIZE, 6 * PMD_SIZE - (a - space));
    yield* madvise(mm, a, PMD_SIZE, MADV_HUGEPAGE);
    yield* cpuWriteU32(mm, a + 9 * P, 99);
    const to = a + 2 * PMD_SIZE;
    const moved = yield* mremap(mm, a, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    assert.equal(moved, to);
    assert.equal(mm.pmdHuge(to), true);
    assert.equal(yield* cpuReadU32(mm, to + 9 * P), 99);
    const odd = to + PMD_SIZE + 16 * P;
    yield* mremap(mm, to, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, odd);
    assert.equal(mm.hugePmds.size, 0);
    assert.equal(yield* cpuReadU32(mm, odd + 9 * P), 99);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('reclaim splits a THP before it swaps a page of it out; the data comes back', () => {
  const r = runMm(
    function* (m: Machine) {
      const mm = m.createMm();
      const ptr = yield* thpRange(mm);
      for (let i = 0; i < NR; i += 64) yield* cpuWriteU32(mm, ptr + i * P, i);
      yield* shrinkMemory(m, 2 * NR);
      assert.equal(mm.pmdHuge(ptr), false);
      assert.ok([...mm.pt.values()].some((p) => p.kind === 'swap'));
      for (let i = 0; i < NR; i += 64) assert.equal(yield* cpuReadU32(mm, ptr + i * P), i);
    },
    { machine: { frames: 2048 } },
  );
  assert.equal(r.ok, true, r.bug?.message);
});

test('hmm_range_fault reports map order 9 under a huge PMD and 0 once it is split', () => {
  const r = runMm(function* (m: Machine) {
    const mm = m.createMm();
    const ptr = yield* thpRange(mm);
    const sub = new MmuIntervalNotifier({
      client: 'dmirror',
      *invalidate() {
        return true;
      },
    });
    yield* mmuIntervalNotifierInsert(sub, mm, ptr, PMD_SIZE, sub.ops);
    const snap = function* () {
      const range = hmmRange(sub, yield* mmuIntervalReadBegin(sub), ptr, ptr + 2 * P, {
        fault: true,
        write: false,
      });
      yield* mm.mmapLock.downRead();
      yield* hmmRangeFault(mm, range);
      mm.mmapLock.upRead();
      return range.pfns.map(hmmPfnMapOrder);
    };
    assert.deepEqual(yield* snap(), [9, 9]);
    yield* madvise(mm, ptr + P, P, MADV_DONTNEED);
    assert.deepEqual(yield* snap(), [0, 0]);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('madvise THP advice errors: EINVAL for an unaligned start, ENOMEM over a hole', () => {
  const r = runMm(function* (m: Machine) {
    const mm = m.createMm();
    const ptr = yield* mmap(mm, { len: 4 * P, prot: RW, flags: ANON });
    for (const [code, addr, len] of [
      ['EINVAL', ptr + 1, P],
      ['ENOMEM', ptr, 8 * P],
    ] as const) {
      let got: unknown = null;
      try {
        yield* madvise(mm, addr, len, MADV_HUGEPAGE);
      } catch (e) {
        got = e;
      }
      assert.ok(isErrno(got, code), `${code}: got ${String(got)}`);
    }
    // The mapped part took the advice before ENOMEM, as madvise_walk_vmas() leaves it.
    assert.equal(mm.findVma(ptr)!.flags & VM_HUGEPAGE, VM_HUGEPAGE);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('with mm.thp-split-no-notify a device keeps the huge zero page after the split: the coherence oracle reports it', () => {
  const mirrored = (mutants: string[]) =>
    hmmTest(
      function* (f) {
        const ptr = yield* thpRange(f.mm);
        const c = cmd(ptr, mirrorBuffer(NR), NR);
        assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_READ, c), 0);
        assert.equal(f.mm.pmdHuge(ptr), true);
        yield* cpuWriteU32(f.mm, ptr, 1);
      },
      { mutants },
    );
  ok(mirrored([]));
  const r = mirrored(['mm.thp-split-no-notify']);
  assert.equal(r.ok, false);
  assert.equal(r.bug?.rule, 'coherence');
  assert.match(r.bug?.message ?? '', /still maps .* after the CPU entry was (cleared|changed)/);
});

test('the OOM reaper and exit drop huge mappings whole; make_device_exclusive splits the PMD it needs a PTE of', () => {
  const r = runMm(function* (m: Machine) {
    const mm = m.createMm();
    const ptr = yield* thpRange(mm, 2);
    const used = m.phys.usedFrames;
    yield* cpuWriteU32(mm, ptr, 1);
    yield* cpuReadU32(mm, ptr + PMD_SIZE);
    assert.equal(mm.hugePmds.size, 2);
    mmgrab(mm);
    const reaped = yield* oomReap(mm);
    assert.equal(reaped.reaped > 0, true);
    assert.equal(mm.hugePmds.size, 0);
    assert.equal(m.phys.usedFrames, used);
    mmdrop(mm);
    const other = m.createMm();
    const q = yield* thpRange(other);
    yield* cpuWriteU32(other, q + 7 * P, 70);
    yield* other.mmapLock.downRead();
    const page = yield* makeDeviceExclusive(other, q + 7 * P, null);
    unlockPage(m, page);
    m.phys.put(page);
    other.mmapLock.upRead();
    assert.equal(other.pmdHuge(q), false);
    assert.equal(other.pte(q + 7 * P)?.kind, 'exclusive');
    assert.equal(other.pte(q + 8 * P)?.kind, 'page');
    assert.equal(yield* cpuReadU32(other, q + 7 * P), 70);
    yield* mmput(other);
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
});
