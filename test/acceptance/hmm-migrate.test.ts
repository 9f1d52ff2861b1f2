// The device-private passes of tools/testing/selftests/mm/hmm-tests.c, with the expected values
// of shared/spec/hmm-tests.md §2 and N = 1024 pages. The THP passes of 6, 33 and 34 are in
// hmm-thp.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Dmirror } from '../../src/drivers/dmirror/dmirror.ts';
import {
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_RELEASE,
  HMM_DMIRROR_WRITE,
} from '../../src/drivers/dmirror/uapi.ts';
import { type Co, Completion } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  PMD_SIZE,
} from '../../src/mm/constants.ts';
import { mmput } from '../../src/mm/exit.ts';
import { fork } from '../../src/mm/fork.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mremap } from '../../src/mm/mremap.ts';
import { munmap } from '../../src/mm/munmap.ts';
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
  migrateToDevice,
  mirrorBuffer,
  N,
  neg,
  ok,
  RW,
} from './hmm-harness.ts';

/** P: pages per PMD. */
const P = PMD_SIZE / PAGE_SIZE;

/** M2D(npages) at ptr → 0, cpages npages, and the read-back holds k. */
function* migrateAll(d: Dmirror, ptr: number, npages: number): Co<Uint8Array> {
  const mirror = yield* migrateToDevice(d, ptr, npages);
  assert.equal(firstMismatch(mirror, id), -1);
  return mirror;
}

/** N pages RW holding ints k. */
function* filled(f: Fixture, npages = N): Co<number> {
  const ptr = yield* mmap(f.mm, { len: npages * PAGE_SIZE, prot: RW, flags: ANON });
  yield* cpuFillInts(f.mm, ptr, 0, npages, id);
  return ptr;
}

test('12 migrate: M2D(N) → 0, cpages N; mirror k; every page is now a device-private entry', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* filled(f);
      yield* migrateAll(f.dmirror, ptr, N);
      assert.deepEqual(new Set(kinds(f.mm, ptr, N)), new Set(['device']));
      assert.equal(f.device.devmem.calloc, N);
    }),
  );
});

test('13 migrate_fault: the CPU reads half back (==k), M2D(N) again → 0, cpages N', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* filled(f);
      yield* migrateAll(f.dmirror, ptr, N);
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, N / 2, id), -1);
      const back = kinds(f.mm, ptr, N);
      assert.deepEqual(new Set(back.slice(0, N / 2)), new Set(['page']));
      assert.deepEqual(new Set(back.slice(N / 2)), new Set(['device']));
      yield* migrateAll(f.dmirror, ptr, N);
      assert.deepEqual(new Set(kinds(f.mm, ptr, N)), new Set(['device']));
    }),
  );
});

test('14 migrate_release: M2D(N), RELEASE → 0, the CPU reads the first half ==k', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* filled(f);
      yield* migrateAll(f.dmirror, ptr, N);
      const c = cmd(ptr, mirrorBuffer(1), 1);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_RELEASE, c), 0);
      assert.deepEqual(new Set(kinds(f.mm, ptr, N)), new Set(['page']), 'all evicted');
      assert.equal(f.device.devmem.chunks.length, 0);
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, N / 2, id), -1);
      // Memory for later migrations is allocated again on demand.
      yield* migrateAll(f.dmirror, ptr, N);
    }),
  );
});

test('6 anon_write_child (migrate=1, thp=0): the child reads the pages back and writes −k; the parent keeps k', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* mmap(f.mm, { len: 2 * N * PAGE_SIZE, prot: RW, flags: ANON });
      yield* cpuFillInts(f.mm, ptr, 0, N, id);
      yield* migrateAll(f.dmirror, ptr, N);
      const childMm = yield* fork(f.mm);
      // Fork made the private device entries read-only on both sides.
      assert.equal(f.mm.pte(ptr)?.kind, 'device');
      assert.equal(f.mm.pte(ptr)?.writable, false);
      assert.equal(childMm.pte(ptr)?.writable, false);
      const exited = new Completion('waitpid');
      f.k.spawn('child', function* () {
        assert.equal(yield* cpuCheckInts(childMm, ptr, 0, N, id), -1);
        const d = yield* Dmirror.open(f.device, childMm);
        const mirror = mirrorBuffer(N);
        fillInts(mirror, neg);
        const c = cmd(ptr, mirror, N);
        assert.equal(yield* d.ioctl(HMM_DMIRROR_WRITE, c), 0);
        assert.equal(c.cpages, N);
        assert.equal(c.faults, 1);
        yield* d.close();
        yield* mmput(childMm);
        exited.complete();
      });
      yield* exited.wait();
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, N, id), -1);
    }),
  );
});

for (const offset of [0, 128, 256]) {
  test(`33 migrate_partial_unmap_fault (NOHUGEPAGE, offset ${offset * 4} KiB): M2D(512), munmap 1 MiB, the rest reads k`, () => {
    ok(
      hmmTest(function* (f) {
        const ptr = yield* filled(f, P);
        yield* migrateAll(f.dmirror, ptr, P);
        yield* munmap(f.mm, ptr + offset * PAGE_SIZE, 256 * PAGE_SIZE);
        // The unmapped device pages went back to the device's free list.
        assert.equal(f.device.devmem.cfree, 256);
        assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, offset, id), -1);
        assert.equal(yield* cpuCheckInts(f.mm, ptr, offset + 256, P, id), -1);
        // So did those the CPU faulted back.
        assert.equal(f.device.devmem.cfree, P);
      }),
    );
  });
}

for (const before of [false, true])
  for (const dontunmap of [false, true])
    for (const offset of [0, 128, 256]) {
      const name = `before=${before ? 1 : 0} dontunmap=${dontunmap ? 1 : 0} offset=${offset * 4}K`;
      test(`34 migrate_remap_fault (${name}): M2D(512) → cpages 512; the moved pages read k`, () => {
        ok(
          hmmTest(function* (f) {
            const mm = f.mm;
            const region = yield* mmap(mm, { len: 8 * PMD_SIZE, prot: RW, flags: ANON });
            const map = region + PMD_SIZE - (region % PMD_SIZE);
            yield* munmap(mm, map + PMD_SIZE, 2 * PMD_SIZE);
            yield* cpuFillInts(mm, map, 0, P, id);
            const target = map + PMD_SIZE + offset * PAGE_SIZE;
            const flags = MREMAP_MAYMOVE | MREMAP_FIXED | (dontunmap ? MREMAP_DONTUNMAP : 0);
            const move = () => mremap(mm, map, PMD_SIZE, PMD_SIZE, flags, target);
            let ptr = map;
            if (before) ptr = yield* move();
            yield* migrateAll(f.dmirror, ptr, P);
            if (!before) ptr = yield* move();
            assert.equal(ptr, target);
            assert.equal(yield* cpuCheckInts(mm, ptr, 0, P, id), -1);
            yield* munmap(mm, ptr, PMD_SIZE);
          }),
        );
      });
    }

test('migrate_shared: M2D(N) of shared anonymous memory → -ENOENT (shmem pages do not migrate)', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* mmap(f.mm, {
        len: N * PAGE_SIZE,
        prot: RW,
        flags: MAP_SHARED | MAP_ANONYMOUS,
      });
      const c = cmd(ptr, mirrorBuffer(N), N);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, c), -2);
    }),
  );
});

test('migrate_multiple: 10 rounds of mmap, M2D(N) → cpages N, M2S(N) → cpages N, the CPU reads k, munmap', () => {
  ok(
    hmmTest(function* (f) {
      for (let round = 0; round < 10; round++) {
        const ptr = yield* filled(f);
        yield* migrateAll(f.dmirror, ptr, N);
        const back = cmd(ptr, mirrorBuffer(N), N);
        assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, back), 0);
        assert.equal(back.cpages, N);
        assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, N, id), -1);
        yield* munmap(f.mm, ptr, N * PAGE_SIZE);
      }
      // Every device page went back to the device, and the free list serves the next round.
      assert.equal(f.device.devmem.cfree, 10 * N);
      assert.equal(f.device.devmem.chunks.length, 1);
    }),
  );
});
