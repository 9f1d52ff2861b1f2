// The device-exclusive tests of tools/testing/selftests/mm/hmm-tests.c (hmm_exclusive,
// hmm_exclusive_mprotect, hmm_exclusive_cow) with N = 1024 pages, and what fork does with
// device-exclusive entries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  HMM_DMIRROR_CHECK_EXCLUSIVE,
  HMM_DMIRROR_EXCLUSIVE,
  HMM_DMIRROR_WRITE,
} from '../../src/drivers/dmirror/uapi.ts';
import { type Co, Completion } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
} from '../../src/mm/constants.ts';
import { mmput } from '../../src/mm/exit.ts';
import { fork } from '../../src/mm/fork.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mprotect } from '../../src/mm/mprotect.ts';
import { shrinkMemory } from '../../src/mm/reclaim.ts';
import {
  ANON,
  cmd,
  cpuCheckInts,
  cpuFillInts,
  type Fixture,
  fillInts,
  firstMismatch,
  hmmTest,
  id,
  kinds,
  mirrorBuffer,
  N,
  ok,
  RW,
} from './hmm-harness.ts';

const EPERM = -1;
const EFAULT = -14;
const plus1 = (i: number) => i + 1;

const kindSet = (mm: Mm, addr: number, n: number) => new Set(kinds(mm, addr, n));

/** N pages holding k, made exclusive: EXCLUSIVE(N) → 0, cpages N, mirror k. */
function* exclusive(f: Fixture, n = N): Co<number> {
  const ptr = yield* mmap(f.mm, { len: n * PAGE_SIZE, prot: RW, flags: ANON });
  yield* cpuFillInts(f.mm, ptr, 0, n, id);
  const c = cmd(ptr, mirrorBuffer(n), n);
  assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_EXCLUSIVE, c), 0);
  assert.equal(c.cpages, n);
  assert.equal(firstMismatch(c.ptr, id), -1);
  assert.deepEqual(kindSet(f.mm, ptr, n), new Set(['exclusive']));
  return ptr;
}

test('hmm_exclusive: EXCLUSIVE(N) → 0, cpages N; the CPU adds 1 to every int (restoring each page); CHECK_EXCLUSIVE → 0', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* exclusive(f);
      const check = cmd(ptr, mirrorBuffer(1), N);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_CHECK_EXCLUSIVE, check), EPERM);
      yield* cpuFillInts(f.mm, ptr, 0, N, plus1);
      assert.deepEqual(kindSet(f.mm, ptr, N), new Set(['page']));
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, N, plus1), -1);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_CHECK_EXCLUSIVE, check), 0);
    }),
  );
});

test('hmm_exclusive_mprotect: EXCLUSIVE(N), mprotect(PROT_READ), WRITE(N) → -EPERM', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* exclusive(f);
      yield* mprotect(f.mm, ptr, N * PAGE_SIZE, PROT_READ);
      const c = cmd(ptr, mirrorBuffer(N), N);
      fillInts(c.ptr, plus1);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_WRITE, c), EPERM);
    }),
  );
});

test('hmm_exclusive_cow: EXCLUSIVE(N), fork; parent and child each add 1 and read i+1 (no sharing of writes)', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* exclusive(f);
      const child = yield* fork(f.mm);
      // Fork restored the parent's entries and shares the pages read-only.
      assert.deepEqual(kindSet(f.mm, ptr, N), new Set(['page']));
      const done = new Completion('child');
      f.k.spawn('child', function* () {
        yield* cpuFillInts(child, ptr, 0, N, (i) => i - 1);
        assert.equal(yield* cpuCheckInts(child, ptr, 0, N, (i) => i - 1), -1);
        yield* mmput(child);
        done.complete();
      });
      yield* cpuFillInts(f.mm, ptr, 0, N, plus1);
      yield* done.wait();
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, N, plus1), -1);
    }),
  );
});

test('with mm.fork-copies-exclusive the parent restores a writable entry to a page the child maps: reported as cow', () => {
  const r = hmmTest(
    function* (f) {
      const ptr = yield* exclusive(f, 2);
      const child = yield* fork(f.mm);
      yield* cpuFillInts(f.mm, ptr, 0, 2, plus1);
      yield* mmput(child);
    },
    { mutants: ['mm.fork-copies-exclusive'] },
  );
  assert.equal(r.bug?.rule, 'cow', r.bug?.message);
  assert.match(r.bug!.message, /maps pfn \d+ writable while mm\d+ 0x[0-9a-f]+ maps it too/);
});

test('EXCLUSIVE errors: a PROT_NONE or missing page → -EFAULT; shared memory → -EOPNOTSUPP', () => {
  ok(
    hmmTest(function* (f) {
      const none = yield* mmap(f.mm, { len: PAGE_SIZE, prot: PROT_NONE, flags: ANON });
      assert.equal(
        yield* f.dmirror.ioctl(HMM_DMIRROR_EXCLUSIVE, cmd(none, mirrorBuffer(1), 1)),
        EFAULT,
      );
      const hole = none + 16 * PAGE_SIZE;
      assert.equal(
        yield* f.dmirror.ioctl(HMM_DMIRROR_EXCLUSIVE, cmd(hole, mirrorBuffer(1), 1)),
        EFAULT,
      );
      const shared = yield* mmap(f.mm, {
        len: PAGE_SIZE,
        prot: RW,
        flags: MAP_SHARED | MAP_ANONYMOUS,
      });
      assert.equal(
        yield* f.dmirror.ioctl(HMM_DMIRROR_EXCLUSIVE, cmd(shared, mirrorBuffer(1), 1)),
        -95,
      );
    }),
  );
});

test('a device-exclusive page stays mapped: reclaim leaves it, and the CPU reads it back intact', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* exclusive(f, 4);
      const page = f.mm.pte(ptr)!.page!;
      assert.equal(page.mapcount, 1);
      yield* shrinkMemory(f.machine, 64);
      assert.deepEqual(kindSet(f.mm, ptr, 4), new Set(['exclusive']));
      assert.equal(f.mm.pte(ptr)!.page, page);
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, 4, id), -1);
    }),
  );
});
