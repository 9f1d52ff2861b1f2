// Regression (found by api-bad-input.test.ts, shrunk by fast-check): READ or WRITE on an HMM
// test device mirror whose process has exited spun until the step limit. The walk found no
// device entry, dmirror_fault() returned 0 without faulting (mmget_not_zero() failed), and
// dmirror_read() went round again. Now it is -EINVAL, as SNAPSHOT was already.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Dmirror,
  DmirrorDevice,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_WRITE,
  installOracles,
  Kernel,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  Machine,
  mmap,
  mmput,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/index.ts';

const EINVAL = -22;

test('READ, WRITE and SNAPSHOT on a mirror of an exited process are -EINVAL, nothing changed, no spin', () => {
  const k = new Kernel({ maxSteps: 100_000 });
  const machine = new Machine(k, { frames: 64 });
  installOracles(k, machine);
  const device = new DmirrorDevice(machine, 0);
  const mm = machine.createMm();
  const results: number[] = [];
  k.spawn('process', function* () {
    const addr = yield* mmap(mm, {
      len: 4 * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    const d = yield* Dmirror.open(device, mm);
    yield* mmput(mm);
    for (const request of [HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_SNAPSHOT]) {
      const cmd = { addr, ptr: new Uint8Array(4 * PAGE_SIZE), npages: 4, cpages: 7, faults: 9 };
      results.push(yield* d.ioctl(request, cmd));
      assert.deepEqual([cmd.cpages, cmd.faults], [7, 9], 'cpages and faults untouched');
      assert.equal(d.pt.count(mm), 0);
    }
    yield* d.close();
  });
  const r = k.run();
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(results, [EINVAL, EINVAL, EINVAL]);
});
