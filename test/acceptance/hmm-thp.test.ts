// The THP passes of tools/testing/selftests/mm/hmm-tests.c (6 with thp=1, 8, 29, and the
// HUGEPAGE passes of 33 and 34), with the expected values of shared/spec/hmm-tests.md §2.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Dmirror } from '../../src/drivers/dmirror/dmirror.ts';
import {
  HMM_DMIRROR_FLAG_FAIL_ALLOC,
  HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_WRITE,
} from '../../src/drivers/dmirror/uapi.ts';
import { type Co, Completion } from '../../src/index.ts';
import {
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
} from '../../src/mm/constants.ts';
import { mmput } from '../../src/mm/exit.ts';
import { fork } from '../../src/mm/fork.ts';
import { madvise } from '../../src/mm/madvise.ts';
import type { Mm } from '../../src/mm/mm.ts';
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
  neg,
  ok,
  RW,
} from './hmm-harness.ts';

/** P: pages per PMD. */
const P = PMD_SIZE / PAGE_SIZE;

/** The selftests' THP region: mmap 2P, take the P-aligned address inside, madvise it. */
function* thpRegion(f: Fixture, prot = RW, advice = MADV_HUGEPAGE): Co<number> {
  const region = yield* mmap(f.mm, { len: 2 * PMD_SIZE, prot, flags: ANON });
  const ptr = region + PMD_SIZE - (region % PMD_SIZE);
  yield* madvise(f.mm, ptr, PMD_SIZE, advice);
  return ptr;
}

/** SNAPSHOT of `npages` at ptr: the distinct bytes it holds. */
function* snapshotBytes(d: Dmirror, ptr: number, npages: number): Co<number[]> {
  const out = new Uint8Array(npages);
  const c = cmd(ptr, out, npages);
  assert.equal(yield* d.ioctl(HMM_DMIRROR_SNAPSHOT, c), 0);
  return [...new Set(out)];
}

const huge = (mm: Mm, ptr: number) => mm.pmdHuge(ptr);

for (const migrateFirst of [false, true]) {
  test(`6 anon_write_child (migrate=${migrateFirst ? 1 : 0}, thp=1): the child writes −k through its own mirror; the parent keeps k`, () => {
    ok(
      hmmTest(function* (f) {
        const ptr = yield* thpRegion(f);
        yield* cpuFillInts(f.mm, ptr, 0, P, id);
        assert.ok(huge(f.mm, ptr), 'the first write faulted in a THP');
        if (migrateFirst) {
          assert.equal(firstMismatch(yield* migrateToDevice(f.dmirror, ptr, P), id), -1);
          assert.deepEqual(new Set(kinds(f.mm, ptr, P)), new Set(['device']));
          assert.ok(huge(f.mm, ptr), 'a device THP, still mapped by one PMD');
        }
        const childMm = yield* fork(f.mm);
        assert.ok(huge(childMm, ptr), 'fork shares the huge mapping');
        const exited = new Completion('waitpid');
        f.k.spawn('child', function* () {
          assert.equal(yield* cpuCheckInts(childMm, ptr, 0, P, id), -1);
          const d = yield* Dmirror.open(f.device, childMm);
          const mirror = mirrorBuffer(P);
          fillInts(mirror, neg);
          const c = cmd(ptr, mirror, P);
          assert.equal(yield* d.ioctl(HMM_DMIRROR_WRITE, c), 0);
          assert.equal(c.cpages, P);
          assert.equal(c.faults, 1);
          if (!migrateFirst) assert.equal(yield* cpuCheckInts(childMm, ptr, 0, P, neg), -1);
          yield* d.close();
          yield* mmput(childMm);
          exited.complete();
        });
        yield* exited.wait();
        assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, P, id), -1);
      }),
    );
  });
}

test('8 anon_write_huge: WRITE(512) into a THP region → 0, cpages 512, faults 1; the CPU reads k', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* thpRegion(f);
      const mirror = mirrorBuffer(P);
      fillInts(mirror, id);
      const c = cmd(ptr, mirror, P);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_WRITE, c), 0);
      assert.equal(c.cpages, P);
      assert.equal(c.faults, 1);
      assert.ok(huge(f.mm, ptr), 'the device write faulted in one THP');
      assert.deepEqual(yield* snapshotBytes(f.dmirror, ptr, P), [0x06]);
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, P, id), -1);
    }),
  );
});

test('29 migrate_anon_huge_empty: M2D(512) of an untouched read-only THP region → 0, cpages 512, zeros', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* thpRegion(f, PROT_READ);
      const mirror = mirrorBuffer(P);
      mirror.fill(0xff);
      const c = cmd(ptr, mirror, P);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, c), 0);
      assert.equal(c.cpages, P);
      assert.equal(
        firstMismatch(mirror, () => 0),
        -1,
      );
      // The empty PMD took one device THP, read-only like the VMA.
      assert.ok(huge(f.mm, ptr));
      assert.deepEqual(yield* snapshotBytes(f.dmirror, ptr, P), [0x25]);
    }),
  );
});

test('migrate_anon_huge: M2D of a THP moves it whole (device THP, SNAPSHOT 0x26); a CPU read brings back a THP', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* thpRegion(f);
      yield* cpuFillInts(f.mm, ptr, 0, P, id);
      assert.deepEqual(yield* snapshotBytes(f.dmirror, ptr, P), [0x06]);
      assert.equal(firstMismatch(yield* migrateToDevice(f.dmirror, ptr, P), id), -1);
      assert.deepEqual(yield* snapshotBytes(f.dmirror, ptr, P), [0x26]);
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, 1, id), -1);
      // One touch migrated the whole folio back, into a system THP, whose pages reclaim can find.
      assert.deepEqual(new Set(kinds(f.mm, ptr, P)), new Set(['page']));
      assert.ok(huge(f.mm, ptr));
      assert.ok(f.machine.phys.lru.has(f.mm.pte(ptr + 7 * PAGE_SIZE)!.page!));
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, P, id), -1);
    }),
  );
});

test('migrate_anon_huge_fault_alloc: with FAIL_ALLOC a THP migrates as 512 small device pages (the source split)', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* thpRegion(f);
      yield* cpuFillInts(f.mm, ptr, 0, P, id);
      const flags = cmd(ptr, mirrorBuffer(1), HMM_DMIRROR_FLAG_FAIL_ALLOC);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_FLAGS, flags), 0);
      assert.equal(firstMismatch(yield* migrateToDevice(f.dmirror, ptr, P), id), -1);
      assert.equal(huge(f.mm, ptr), false);
      assert.deepEqual(yield* snapshotBytes(f.dmirror, ptr, P), [0x22]);
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, P, id), -1);
    }),
  );
});

test('a device THP comes back as 512 small pages when FAIL_ALLOC fails the system THP; MIGRATE_TO_SYS moves one whole', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* thpRegion(f);
      yield* cpuFillInts(f.mm, ptr, 0, P, id);
      yield* migrateToDevice(f.dmirror, ptr, P);
      const flags = cmd(ptr, mirrorBuffer(1), HMM_DMIRROR_FLAG_FAIL_ALLOC);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_FLAGS, flags), 0);
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, 1, id), -1);
      assert.deepEqual(new Set(kinds(f.mm, ptr, P)), new Set(['page']));
      assert.equal(huge(f.mm, ptr), false, 'the device THP was split on the way back');
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, P, id), -1);
      // A second THP region: to the device and back with MIGRATE_TO_SYS, whole both ways.
      const other = yield* thpRegion(f);
      yield* cpuFillInts(f.mm, other, 0, P, neg);
      yield* migrateToDevice(f.dmirror, other, P);
      const c = cmd(other, mirrorBuffer(P), P);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, c), 0);
      assert.equal(c.cpages, P);
      assert.ok(huge(f.mm, other));
      assert.deepEqual(yield* snapshotBytes(f.dmirror, other, P), [0x06]);
      assert.equal(yield* cpuCheckInts(f.mm, other, 0, P, neg), -1);
    }),
  );
});

for (const offset of [0, 128, 256]) {
  test(`33 migrate_partial_unmap_fault (HUGEPAGE, offset ${offset * 4} KiB): M2D(512), munmap 1 MiB, the rest reads k`, () => {
    ok(
      hmmTest(function* (f) {
        const ptr = yield* thpRegion(f);
        yield* cpuFillInts(f.mm, ptr, 0, P, id);
        assert.ok(huge(f.mm, ptr));
        assert.equal(firstMismatch(yield* migrateToDevice(f.dmirror, ptr, P), id), -1);
        yield* munmap(f.mm, ptr + offset * PAGE_SIZE, 256 * PAGE_SIZE);
        // The partial munmap split the device THP's PMD.
        assert.equal(huge(f.mm, ptr), false);
        assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, offset, id), -1);
        assert.equal(yield* cpuCheckInts(f.mm, ptr, offset + 256, P, id), -1);
        assert.equal(f.device.devmem.cfree, P);
      }),
    );
  });
}

for (const before of [false, true])
  for (const dontunmap of [false, true])
    for (const offset of [0, 128, 256]) {
      const name = `before=${before ? 1 : 0} dontunmap=${dontunmap ? 1 : 0} offset=${offset * 4}K`;
      test(`34 migrate_remap_fault (thp=1, ${name}): M2D(512) → cpages 512; the moved pages read k`, () => {
        ok(
          hmmTest(function* (f) {
            const mm = f.mm;
            const region = yield* mmap(mm, { len: 8 * PMD_SIZE, prot: RW, flags: ANON });
            const map = region + PMD_SIZE - (region % PMD_SIZE);
            yield* madvise(mm, map, PMD_SIZE, MADV_HUGEPAGE);
            yield* munmap(mm, map + PMD_SIZE, 2 * PMD_SIZE);
            yield* cpuFillInts(mm, map, 0, P, id);
            assert.ok(huge(mm, map));
            const target = map + PMD_SIZE + offset * PAGE_SIZE;
            const flags = MREMAP_MAYMOVE | MREMAP_FIXED | (dontunmap ? MREMAP_DONTUNMAP : 0);
            const move = () => mremap(mm, map, PMD_SIZE, PMD_SIZE, flags, target);
            let ptr = map;
            if (before) ptr = yield* move();
            assert.equal(firstMismatch(yield* migrateToDevice(f.dmirror, ptr, P), id), -1);
            if (!before) ptr = yield* move();
            assert.equal(ptr, target);
            // move_huge_pmd() kept the PMD whole only where the target is aligned.
            assert.equal(huge(mm, ptr), offset === 0);
            assert.equal(yield* cpuCheckInts(mm, ptr, 0, P, id), -1);
            yield* munmap(mm, ptr, PMD_SIZE);
          }),
        );
      });
    }

test('MADV_NOHUGEPAGE keeps a region on small pages; MADV_HUGEPAGE over a hole is ENOMEM', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* thpRegion(f, RW, MADV_NOHUGEPAGE);
      yield* cpuFillInts(f.mm, ptr, 0, 1, id);
      assert.equal(huge(f.mm, ptr), false);
      assert.deepEqual(kinds(f.mm, ptr, 2), ['page', 'none']);
      yield* munmap(f.mm, ptr, PMD_SIZE);
      let code = '';
      try {
        yield* madvise(f.mm, ptr, PMD_SIZE, MADV_HUGEPAGE);
      } catch (e) {
        code = (e as { code: string }).code;
      }
      assert.equal(code, 'ENOMEM');
    }),
  );
});
