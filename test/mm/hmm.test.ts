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
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
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

/** A range over `pages` pages at `start` with per-page requests, faulted once. */
function* perPage(
  mm: Mm,
  start: number,
  defaults: { fault: boolean; write: boolean },
  requests: { pfnFlagsMask: number; pfns: number[] },
): Co<{ result: string | null; flags: number[] }> {
  const sub = new MmuIntervalNotifier({
    *invalidate(s, _r, cur) {
      mmuIntervalSetSeq(s, cur);
      return true;
    },
  });
  const len = requests.pfns.length * PAGE_SIZE;
  yield* mmuIntervalNotifierInsert(sub, mm, start, len, sub.ops);
  const seq = yield* mmuIntervalReadBegin(sub);
  const r = hmmRange(sub, seq, start, start + len, defaults, requests);
  const result = yield* fault(mm, r);
  yield* mmuIntervalNotifierRemove(sub);
  return { result, flags: r.pfns.map(hmmPfnFlags) };
}

test('per-page requests: input flags under pfn_flags_mask fault only the pages that ask; mask 0 ignores a reused array', () => {
  run(function* (_m, mm) {
    const a = yield* mmap(mm, { len: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: ANON });
    yield* cpuWriteU32(mm, a + 3 * PAGE_SIZE, 5);
    const none = { fault: false, write: false };
    // A reused array full of last pass's VALID|WRITE outputs: with mask 0 they ask nothing.
    const stale = [3, 3, 3, 3].map((f) => 0x100 * 7 + f);
    assert.deepEqual(yield* perPage(mm, a, none, { pfnFlagsMask: 0, pfns: stale }), {
      result: null,
      flags: [0, 0, 0, HMM_PFN_VALID | HMM_PFN_WRITE],
    });
    // Page 1 asks for a read fault; page 0, before it, asks nothing and stays out. As
    // hmm_vma_fault() does, the fault covers the rest of the walk step: page 2 comes in too.
    const mask = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE;
    const upTo = function* (pfns: number[], m = mask) {
      let got = yield* perPage(mm, a, none, { pfnFlagsMask: m, pfns });
      for (let i = 0; got.result === 'EBUSY' && i < 4; i++)
        got = yield* perPage(mm, a, none, { pfnFlagsMask: m, pfns });
      assert.equal(got.result, null);
      return got.flags;
    };
    const VW = HMM_PFN_VALID | HMM_PFN_WRITE;
    assert.deepEqual(yield* upTo([0, HMM_PFN_REQ_FAULT, 0, 0]), [
      0,
      HMM_PFN_VALID,
      HMM_PFN_VALID,
      VW,
    ]);
    // Under a mask without REQ_WRITE, page 0's write request is only a read fault.
    const writeAt0 = [HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, 0, 0, 0];
    assert.deepEqual(yield* upTo(writeAt0, HMM_PFN_REQ_FAULT), [
      HMM_PFN_VALID,
      HMM_PFN_VALID,
      HMM_PFN_VALID,
      VW,
    ]);
    assert.equal(mm.pte(a)?.writable ?? false, false, 'a read fault only');
    // With it, a write fault (for the rest of the step too).
    assert.deepEqual(yield* upTo(writeAt0), [VW, VW, VW, VW]);
    // A write request without a fault request asks nothing: the zero page shows read-only.
    const b = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: ANON });
    yield* cpuReadU32(mm, b);
    const got = yield* perPage(
      mm,
      b,
      { fault: false, write: true },
      { pfnFlagsMask: 0, pfns: [0] },
    );
    assert.deepEqual(got, { result: null, flags: [HMM_PFN_VALID] });
  });
});

test('per-page requests: a mask with other bits, or an input array of the wrong length, is EINVAL', () => {
  const sub = new MmuIntervalNotifier({
    *invalidate() {
      return true;
    },
  });
  const req = { fault: false, write: false };
  for (const [mask, n, what] of [
    [HMM_PFN_ERROR, 2, /pfn_flags_mask/],
    [0.5, 2, /pfn_flags_mask/],
    [HMM_PFN_REQ_FAULT, 3, /3 input pfns for a range of 2 pages/],
  ] as const)
    assert.throws(
      () =>
        hmmRange(sub, 0, 0x10000, 0x10000 + 2 * PAGE_SIZE, req, {
          pfnFlagsMask: mask,
          pfns: new Array(n).fill(0),
        }),
      (e) => isErrno(e, 'EINVAL') && what.test((e as Error).message),
    );
});
