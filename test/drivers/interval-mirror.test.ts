// The interval mirror subscribes either way Linux drivers do: mmu_interval_notifier_insert()
// (taking mmap_lock itself) or, with mmap_lock held for write, _insert_locked() (amdkfd).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { IntervalMirror } from '../../src/drivers/mirror/interval-mirror.ts';
import { Kernel } from '../../src/index.ts';
import { TraceRecorder } from '../../src/kernel/trace-export.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { Machine } from '../../src/mm/machine.ts';
import { madvise } from '../../src/mm/madvise.ts';
import { mmap } from '../../src/mm/mmap.ts';

for (const locked of [false, true]) {
  test(`insert(locked=${locked}): the subscription mirrors and invalidates the range, then goes`, () => {
    const k = new Kernel();
    const rec = new TraceRecorder(k.trace);
    const machine = new Machine(k, { frames: 8 });
    installOracles(k, machine);
    const mm = machine.createMm();
    const seen: (boolean | number)[] = [];
    k.spawn('t', function* () {
      const at = yield* mmap(mm, {
        len: 2 * PAGE_SIZE,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      yield* cpuWriteU32(mm, at, 7);
      const m = new IntervalMirror(k, mm, 'mirror0');
      yield* m.insert(at, 2 * PAGE_SIZE, locked);
      seen.push(yield* m.touch(at, true));
      seen.push(m.smmu.lookup(mm, at) === undefined ? 0 : 1);
      yield* madvise(mm, at, PAGE_SIZE, MADV_DONTNEED);
      seen.push(m.smmu.lookup(mm, at) === undefined ? 0 : 1);
      yield* m.remove();
      seen.push(mm.mmapLock.isWriteLockedByCurrent());
      yield* mmput(mm);
    });
    const r = k.run();
    assert.equal(r.ok, true, r.bug?.message);
    assert.deepEqual(seen, [true, 1, 0, false]);
    const paths = rec.events.filter((e) => e.type === 'mm-path' && e.phase === 'begin');
    const names = paths.map((e) => (e as { fn: string }).fn);
    assert.equal(names.includes('mmu_interval_notifier_insert_locked'), locked);
    assert.equal(names.includes('mmu_interval_notifier_insert'), !locked);
  });
}
