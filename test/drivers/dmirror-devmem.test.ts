// dmirror's device memory beyond the selftest passes: FAIL_ALLOC, what cannot migrate,
// MIGRATE_TO_SYS, SNAPSHOT bytes of device pages, a second device, fork, pins, and freeing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DmirrorDevice } from '../../src/drivers/dmirror/device.ts';
import { Dmirror } from '../../src/drivers/dmirror/dmirror.ts';
import {
  HMM_DMIRROR_FLAG_FAIL_ALLOC,
  HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_NONE,
  HMM_DMIRROR_PROT_READ,
  HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_SNAPSHOT,
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
import { getUserPages, unpinUserPages } from '../../src/mm/gup.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mprotect } from '../../src/mm/mprotect.ts';
import { munmap } from '../../src/mm/munmap.ts';
import {
  ANON,
  cmd,
  cpuCheckInts,
  cpuFillInts,
  type Fixture,
  firstMismatch,
  hmmTest,
  id,
  kinds,
  mirrorBuffer,
  ok,
  RW,
} from '../acceptance/hmm-harness.ts';

const ENOENT = -2;
const EFAULT = -14;
const EINVAL = -22;

function* filled(f: Fixture, n: number, flags = ANON): Co<number> {
  const ptr = yield* mmap(f.mm, { len: n * PAGE_SIZE, prot: RW, flags });
  yield* cpuFillInts(f.mm, ptr, 0, n, id);
  return ptr;
}

function* ioctl(
  d: Dmirror,
  req: number,
  ptr: number,
  n: number,
): Co<{ ret: number; c: ReturnType<typeof cmd> }> {
  const c = cmd(ptr, mirrorBuffer(n), n);
  return { ret: yield* d.ioctl(req, c), c };
}

test('FLAGS(FAIL_ALLOC) fails the next device allocation once: M2D → -ENOENT with page 0 left behind, then 0', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* filled(f, 4);
      assert.equal(
        (yield* ioctl(f.dmirror, HMM_DMIRROR_FLAGS, 0, HMM_DMIRROR_FLAG_FAIL_ALLOC)).ret,
        0,
      );
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, ptr, 4)).ret, ENOENT);
      assert.deepEqual(kinds(f.mm, ptr, 4), ['page', 'device', 'device', 'device']);
      assert.equal(f.dmirror.flags, 0);
      const again = yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, ptr, 4);
      assert.equal(again.ret, 0);
      assert.equal(again.c.cpages, 4);
      assert.equal(firstMismatch(again.c.ptr, id), -1);
    }),
  );
});

test('what cannot migrate: shared anonymous memory → -ENOENT; PROT_NONE, a hole, a pinned page', () => {
  ok(
    hmmTest(function* (f) {
      const shared = yield* filled(f, 2, MAP_SHARED | MAP_ANONYMOUS);
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, shared, 2)).ret, ENOENT);
      const none = yield* mmap(f.mm, { len: 2 * PAGE_SIZE, prot: PROT_NONE, flags: ANON });
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, none, 2)).ret, EINVAL);
      yield* munmap(f.mm, none, 2 * PAGE_SIZE);
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, none, 2)).ret, EINVAL);
      const ptr = yield* filled(f, 2);
      yield* f.mm.mmapLock.downRead();
      const pinned = yield* getUserPages(f.mm, ptr, 1, { pin: true });
      f.mm.mmapLock.upRead();
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, ptr, 2)).ret, ENOENT);
      assert.deepEqual(kinds(f.mm, ptr, 2), ['page', 'device']);
      unpinUserPages(f.mm.machine, pinned, { pin: true });
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, ptr, 2)).ret, 0);
    }),
  );
});

test('MIGRATE_TO_SYS → 0, cpages = pages migrated back; the data is intact; freed device pages are counted', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* filled(f, 8);
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, ptr, 6)).ret, 0);
      const back = yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_SYS, ptr, 8);
      assert.equal(back.ret, 0);
      assert.equal(back.c.cpages, 6);
      assert.deepEqual(new Set(kinds(f.mm, ptr, 8)), new Set(['page']));
      assert.equal(f.device.devmem.cfree, 6);
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, 8, id), -1);
    }),
  );
});

test('SNAPSHOT: 0x22 for this device’s writable pages, 0x00 from a second device; its READ pulls them back', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* filled(f, 4);
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, ptr, 4)).ret, 0);
      const snap = cmd(ptr, new Uint8Array(4), 4);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_SNAPSHOT, snap), 0);
      assert.deepEqual(
        [...snap.ptr],
        new Array(4).fill(HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE),
      );
      const other = yield* Dmirror.open(new DmirrorDevice(f.machine, 1), f.mm);
      const snap1 = cmd(ptr, new Uint8Array(4), 4);
      assert.equal(yield* other.ioctl(HMM_DMIRROR_SNAPSHOT, snap1), 0);
      assert.deepEqual([...snap1.ptr], new Array(4).fill(HMM_DMIRROR_PROT_NONE));
      const read = yield* ioctl(other, HMM_DMIRROR_READ, ptr, 4);
      assert.equal(read.ret, 0);
      assert.equal(firstMismatch(read.c.ptr, id), -1);
      assert.deepEqual(new Set(kinds(f.mm, ptr, 4)), new Set(['page']));
      yield* other.close();
    }),
  );
});

test('a read-only device page of this device is never faulted: WRITE → -EFAULT; the CPU write moves it back', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* filled(f, 2);
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, ptr, 2)).ret, 0);
      // mprotect makes writable device-private entries read-only, whatever the new rights.
      yield* mprotect(f.mm, ptr, 2 * PAGE_SIZE, PROT_READ);
      yield* mprotect(f.mm, ptr, 2 * PAGE_SIZE, RW);
      assert.equal(f.mm.pte(ptr)?.writable, false);
      const snap = cmd(ptr, new Uint8Array(1), 1);
      assert.equal(yield* f.dmirror.ioctl(HMM_DMIRROR_SNAPSHOT, snap), 0);
      assert.equal(snap.ptr[0], HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_READ);
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_WRITE, ptr, 2)).ret, EFAULT);
      yield* cpuFillInts(f.mm, ptr, 0, 2, (i) => i + 7);
      assert.deepEqual(kinds(f.mm, ptr, 2), ['page', 'page']);
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_WRITE, ptr, 2)).ret, 0);
    }),
  );
});

test('fork after migration: both sides read-only; the child faults its own copy back, the parent keeps k', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* filled(f, 4);
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, ptr, 4)).ret, 0);
      const child = yield* fork(f.mm);
      assert.deepEqual(new Set(kinds(child, ptr, 4)), new Set(['device']));
      const done = new Completion('child');
      f.k.spawn('child', function* () {
        yield* cpuFillInts(child, ptr, 0, 4, (i) => -i);
        assert.equal(yield* cpuCheckInts(child, ptr, 0, 4, (i) => -i), -1);
        yield* mmput(child);
        done.complete();
      });
      yield* done.wait();
      assert.equal(yield* cpuCheckInts(f.mm, ptr, 0, 4, id), -1);
    }),
  );
});

test('migrating a page shared after fork moves both mappings; munmap and exit give every device page back', () => {
  ok(
    hmmTest(function* (f) {
      const ptr = yield* filled(f, 4);
      const child = yield* fork(f.mm);
      assert.equal((yield* ioctl(f.dmirror, HMM_DMIRROR_MIGRATE_TO_DEV, ptr, 4)).ret, 0);
      assert.deepEqual(new Set(kinds(child, ptr, 4)), new Set(['device']));
      assert.equal(yield* cpuCheckInts(child, ptr, 0, 2, id), -1);
      yield* mmput(child);
      yield* munmap(f.mm, ptr, 4 * PAGE_SIZE);
      assert.equal(f.device.devmem.calloc, 4);
      assert.equal(f.device.devmem.cfree, 4);
    }),
  );
});
