import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { COSTS } from '../../src/cost/table.ts';
import { DmirrorDevice } from '../../src/drivers/dmirror/device.ts';
import { Dmirror } from '../../src/drivers/dmirror/dmirror.ts';
import {
  HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_PROT_ERROR,
  HMM_DMIRROR_PROT_NONE,
  HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_PROT_ZERO,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_SNAPSHOT,
} from '../../src/drivers/dmirror/uapi.ts';
import { isErrno, Kernel } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { HMM_RANGE_DEFAULT_TIMEOUT_NS as RANGE_TIMEOUT_NS } from '../../src/mm/hmm.ts';
import { Machine } from '../../src/mm/machine.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { cmd, hmmTest, mirrorBuffer } from '../acceptance/hmm-harness.ts';

const EINVAL = -22;

test('the ioctl preamble: unaligned address, zero or overflowing npages, unknown requests → -EINVAL, cmd untouched', () => {
  const r = hmmTest(function* ({ dmirror }) {
    const buf = mirrorBuffer(1);
    for (const [addr, npages] of [
      [0x1001, 1],
      [0x1000, 0],
      [0x1000, 2 ** 52],
      [-4096, 1],
    ] as const) {
      const c = { ...cmd(addr, buf, npages), cpages: 7, faults: 9 };
      assert.equal(yield* dmirror.ioctl(HMM_DMIRROR_READ, c), EINVAL, `${addr}/${npages}`);
      assert.deepEqual([c.cpages, c.faults], [7, 9]);
    }
    assert.equal(yield* dmirror.ioctl(0x42, cmd(0x1000, buf, 1)), EINVAL);
    assert.equal(yield* dmirror.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, cmd(0x1000, buf, 1)), EINVAL);
    assert.equal(yield* dmirror.ioctl(HMM_DMIRROR_FLAGS, cmd(0, buf, 1)), 0);
    assert.equal(dmirror.flags, 1);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('READ into a buffer too small for npages is -EFAULT', () => {
  const r = hmmTest(function* ({ mm, dmirror }) {
    const ptr = yield* mmap(mm, {
      len: 2 * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    assert.equal(yield* dmirror.ioctl(HMM_DMIRROR_READ, cmd(ptr, mirrorBuffer(1), 2)), -14);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('SNAPSHOT encodes hole, untouched, zero page, writable page and PROT_NONE', () => {
  const r = hmmTest(function* ({ mm, dmirror }) {
    const ptr = yield* mmap(mm, {
      len: 4 * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    const none = yield* mmap(mm, {
      addr: ptr + 4 * PAGE_SIZE,
      len: PAGE_SIZE,
      prot: PROT_NONE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | 0x100000,
    });
    assert.equal(none, ptr + 4 * PAGE_SIZE);
    yield* cpuReadU32(mm, ptr + PAGE_SIZE);
    yield* cpuWriteU32(mm, ptr + 2 * PAGE_SIZE, 5);
    const m = new Uint8Array(5);
    const c = cmd(ptr, m, 5);
    assert.equal(yield* dmirror.ioctl(HMM_DMIRROR_SNAPSHOT, c), 0);
    assert.equal(c.cpages, 5);
    assert.deepEqual(
      [...m],
      [
        HMM_DMIRROR_PROT_NONE,
        HMM_DMIRROR_PROT_ZERO | 1,
        HMM_DMIRROR_PROT_WRITE,
        HMM_DMIRROR_PROT_NONE,
        HMM_DMIRROR_PROT_ERROR,
      ],
    );
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('a closed mirror refuses commands; closing twice is EBADF; bad device numbers are ENODEV', () => {
  const r = hmmTest(function* ({ dmirror }) {
    yield* dmirror.close();
    assert.equal(yield* dmirror.ioctl(HMM_DMIRROR_READ, cmd(0x1000, mirrorBuffer(1), 1)), -9);
    // The fixture closes again: EBADF is thrown and fails the run (checked below).
  });
  assert.ok(isErrno((r.bug as { cause?: unknown } | null)?.cause, 'EBADF'), r.bug?.message);
  const k = new Kernel();
  assert.throws(() => new DmirrorDevice(new Machine(k), 4), /ENODEV/);
});

test('a READ of more pages than the machine can hold at once gives up with -EBUSY after 1 s of virtual time', () => {
  // Three pages, two frames: faulting the third evicts one of the others, whose invalidation
  // sends the range fault round again. Each failed pass is charged, so the kernel's 1 s
  // timeout ends the livelock instead of the step limit.
  const k = new Kernel({ maxSteps: 5_000_000 });
  const machine = new Machine(k, { frames: 2 });
  installOracles(k, machine);
  const device = new DmirrorDevice(machine, 0);
  const mm = machine.createMm();
  let ret = 0;
  let started = 0;
  k.spawn('test', function* () {
    const dmirror = yield* Dmirror.open(device, mm);
    const ptr = yield* mmap(mm, {
      len: 3 * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    for (let p = 0; p < 3; p++) yield* cpuWriteU32(mm, ptr + p * PAGE_SIZE, p + 1);
    started = k.now;
    ret = yield* dmirror.ioctl(HMM_DMIRROR_READ, cmd(ptr, mirrorBuffer(3), 3));
    yield* dmirror.close();
    yield* mmput(mm);
  });
  const r = k.run();
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(ret, -16);
  const waited = k.now - started;
  assert.ok(
    waited > RANGE_TIMEOUT_NS && waited <= RANGE_TIMEOUT_NS + 2 * COSTS['hmm.retry'].base,
    `${waited}`,
  );
});
