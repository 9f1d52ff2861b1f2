import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Co, isErrno } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  VM_IO,
  VM_PFNMAP,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import {
  HMM_PFN_ERROR,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  type HmmRange,
  hmmPfnFlags,
  hmmPfnMapOrder,
  hmmPfnToPfn,
  hmmRange,
  hmmRangeFault,
} from '../../src/mm/hmm.ts';
import type { Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalSetSeq,
} from '../../src/mm/mmu-interval-notifier.ts';
import { MmuIntervalNotifier } from '../../src/mm/mmu-interval-notifier-types.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from '../../src/mm/mmu-notifier.ts';
import { runMm } from './helpers.ts';

const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function* withRange(
  mm: Mm,
  start: number,
  pages: number,
  req: { fault: boolean; write: boolean },
  body: (r: HmmRange) => Co<void>,
): Co {
  const sub = new MmuIntervalNotifier({
    *invalidate(s, _r, cur) {
      mmuIntervalSetSeq(s, cur);
      return true;
    },
  });
  yield* mmuIntervalNotifierInsert(sub, mm, start, pages * PAGE_SIZE, sub.ops);
  const seq = yield* mmuIntervalReadBegin(sub);
  yield* body(hmmRange(sub, seq, start, start + pages * PAGE_SIZE, req));
  yield* mmuIntervalNotifierRemove(sub);
}

function* fault(mm: Mm, r: HmmRange): Co<string | null> {
  yield* mm.mmapLock.downRead();
  try {
    yield* hmmRangeFault(mm, r);
    return null;
  } catch (e) {
    if (isErrno(e)) return e.code;
    throw e;
  } finally {
    mm.mmapLock.upRead();
  }
}

function run(body: (m: Machine, mm: Mm) => Co<void>) {
  const r = runMm(function* (m) {
    yield* body(m, m.createMm());
  });
  assert.equal(r.ok, true, r.bug?.message);
}

test('snapshot without faulting: 0 for unpopulated, the zero page read-only, a written page writable, ERROR for holes and PROT_NONE', () => {
  run(function* (_m, mm) {
    const a = yield* mmap(mm, { len: 3 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: ANON });
    yield* mmap(mm, {
      addr: a + 3 * PAGE_SIZE,
      len: PAGE_SIZE,
      prot: PROT_NONE,
      flags: ANON | 0x10,
    });
    yield* cpuReadU32(mm, a + PAGE_SIZE);
    yield* cpuWriteU32(mm, a + 2 * PAGE_SIZE, 9);
    yield* withRange(mm, a, 5, { fault: false, write: false }, function* (r) {
      assert.equal(yield* fault(mm, r), null);
      const f = r.pfns.map(hmmPfnFlags);
      assert.deepEqual(f, [
        0,
        HMM_PFN_VALID,
        HMM_PFN_VALID | HMM_PFN_WRITE,
        HMM_PFN_ERROR,
        HMM_PFN_ERROR,
      ]);
      assert.equal(hmmPfnToPfn(r.pfns[1]!), 0, 'the zero page');
      assert.equal(hmmPfnToPfn(r.pfns[2]!), mm.pte(a + 2 * PAGE_SIZE)!.page!.pfn);
      assert.equal(r.gens[2], mm.pte(a + 2 * PAGE_SIZE)!.page!.gen);
      assert.equal(hmmPfnMapOrder(r.pfns[2]!), 0);
    });
  });
});

test('faulting: read faults map pages; write faults break COW; errors by VMA permission', () => {
  run(function* (_m, mm) {
    const a = yield* mmap(mm, { len: 2 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: ANON });
    yield* withRange(mm, a, 2, { fault: true, write: false }, function* (r) {
      assert.equal(yield* fault(mm, r), null);
      assert.deepEqual(
        r.pfns.map(hmmPfnFlags),
        [HMM_PFN_VALID, HMM_PFN_VALID],
        'read faults of anon memory map the zero page',
      );
    });
    // Breaking COW of each zero page invalidates the range itself: a pass that faults ends in
    // EBUSY and a driver starts over with a fresh sequence. hmm_vma_fault() faults the rest of
    // the PMD step at once, so two pages in one PMD take one retry; across a PMD boundary, two.
    const writeFaults = function* (at: number): Co<(string | null)[]> {
      const results: (string | null)[] = [];
      yield* withRange(mm, at, 2, { fault: true, write: true }, function* (r) {
        let cur = r;
        for (let i = 0; i < 5; i++) {
          const res = yield* fault(mm, cur);
          results.push(res);
          if (res === null) break;
          const seq = yield* mmuIntervalReadBegin(r.notifier);
          cur = hmmRange(r.notifier, seq, at, at + 2 * PAGE_SIZE, r.defaultFlags);
        }
        assert.deepEqual(cur.pfns.map(hmmPfnFlags), [
          HMM_PFN_VALID | HMM_PFN_WRITE,
          HMM_PFN_VALID | HMM_PFN_WRITE,
        ]);
        assert.notEqual(hmmPfnToPfn(cur.pfns[0]!), 0);
      });
      return results;
    };
    assert.equal(a % PMD_SIZE <= PMD_SIZE - 2 * PAGE_SIZE, true, 'both pages in one PMD');
    assert.deepEqual(yield* writeFaults(a), ['EBUSY', null]);
    const across = PMD_SIZE * 512 - PAGE_SIZE;
    const b = yield* mmap(mm, {
      addr: across,
      len: 2 * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: ANON | 0x10,
    });
    yield* withRange(mm, b, 2, { fault: true, write: false }, function* (r) {
      assert.equal(yield* fault(mm, r), null);
    });
    assert.deepEqual(yield* writeFaults(b), ['EBUSY', 'EBUSY', null]);
    const ro = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_READ, flags: ANON });
    yield* withRange(mm, ro, 1, { fault: true, write: true }, function* (r) {
      assert.equal(yield* fault(mm, r), 'EPERM');
    });
    const none = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_NONE, flags: ANON });
    yield* withRange(mm, none, 1, { fault: true, write: false }, function* (r) {
      assert.equal(yield* fault(mm, r), 'EFAULT');
    });
    yield* withRange(mm, 0x10000, 1, { fault: true, write: false }, function* (r) {
      assert.equal(yield* fault(mm, r), 'EFAULT', 'no VMA');
    });
    const io = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_READ, flags: ANON });
    mm.findVma(io)!.flags |= VM_IO | VM_PFNMAP;
    yield* withRange(mm, io, 1, { fault: true, write: false }, function* (r) {
      assert.equal(yield* fault(mm, r), 'EFAULT', 'VM_IO/VM_PFNMAP');
    });
  });
});

test('EBUSY as soon as the notifier sequence moved; a fresh read_begin then succeeds', () => {
  run(function* (_m, mm) {
    const a = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: ANON });
    yield* withRange(mm, a, 1, { fault: true, write: false }, function* (r) {
      const range = rangeInit(mm, 'CLEAR', a, a + PAGE_SIZE);
      yield* invalidateRangeStart(range);
      yield* invalidateRangeEnd(range);
      assert.equal(yield* fault(mm, r), 'EBUSY');
      const fresh = hmmRange(
        r.notifier,
        yield* mmuIntervalReadBegin(r.notifier),
        a,
        a + PAGE_SIZE,
        r.defaultFlags,
      );
      assert.equal(yield* fault(mm, fresh), null);
    });
  });
});

test('a range that is not page aligned is EINVAL; calling without mmap_lock is a bug', () => {
  run(function* (_m, mm) {
    const a = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_READ, flags: ANON });
    yield* withRange(mm, a, 1, { fault: false, write: false }, function* (r) {
      assert.equal(yield* fault(mm, { ...r, start: a + 1 }), 'EINVAL');
    });
  });
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_READ, flags: ANON });
    yield* withRange(mm, a, 1, { fault: false, write: false }, function* (range) {
      yield* hmmRangeFault(mm, range);
    });
  });
  assert.match(r.bug?.message ?? '', /hmm_range_fault without mmap_lock held/);
});
