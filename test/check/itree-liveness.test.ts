import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { DmirrorDevice } from '../../src/drivers/dmirror/device.ts';
import { Dmirror } from '../../src/drivers/dmirror/dmirror.ts';
import { type Co, isKernelBug, Kernel } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmdrop, mmgrab } from '../../src/mm/mm-refs.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mmuNotifierRegister, mmuNotifierUnregister } from '../../src/mm/mmu-notifier-register.ts';
import { EAGAIN, MmuNotifier } from '../../src/mm/mmu-notifier-types.ts';
import { type OomReapResult, oomReap } from '../../src/mm/oom-reaper.ts';

/** A classic subscriber that refuses every non-blockable start and has no end (as allowed). */
const refuser = () =>
  new MmuNotifier({
    *invalidateRangeStart(_sub, range) {
      return range.blockable ? 0 : EAGAIN;
    },
  });

/**
 * One process with a dmirror (an interval subscription over its whole address space) and a
 * refusing classic subscriber, reaped by the OOM reaper; then `after` runs.
 */
function reapWorld(unwind: boolean, after: (d: Dmirror, mm: Mm) => Co) {
  const k = new Kernel();
  const m = new Machine(k, { frames: 8, unwindItreeOnRefusal: unwind });
  installOracles(k, m, { leaks: false });
  const mm = m.createMm();
  const seen: OomReapResult[] = [];
  k.spawn('process', function* () {
    const a = yield* mmap(mm, {
      len: 2 * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    yield* cpuWriteU32(mm, a, 1);
    const d = yield* Dmirror.open(new DmirrorDevice(m, 0), mm);
    const classic = refuser();
    yield* mmuNotifierRegister(classic, mm);
    mmgrab(mm);
    seen.push(yield* oomReap(mm));
    mmdrop(mm);
    yield* after(d, mm);
    yield* mmuNotifierUnregister(classic, mm);
  });
  return { r: k.run(), seen };
}

test('liveness: a classic refusal after the interval side began leaves it open; the driver that removes its subscription waits forever', () => {
  const { r, seen } = reapWorld(false, (d) => d.close());
  assert.deepEqual(seen, [{ reaped: 0, skipped: 1, contended: false }]);
  assert.ok(isKernelBug(r.bug, 'liveness'), r.bug?.message);
  assert.match(
    r.bug!.message,
    /process waits forever on mm1's interval sequence: active_invalidate_ranges is 1, invalidate_seq 3 \(odd\), 1 deferred update\(s\) but 0 invalidation\(s\) of mm1 in flight/,
  );
});

test('liveness: with nothing waiting, the open interval invalidation is reported at quiescence', () => {
  const { r } = reapWorld(false, function* () {});
  assert.ok(isKernelBug(r.bug, 'liveness'), r.bug?.message);
  assert.match(
    r.bug!.message,
    /mm1: active_invalidate_ranges is 1, invalidate_seq 3 \(odd\), 0 deferred update\(s\) with every task finished/,
  );
});

test('liveness: ending the interval side on a classic refusal (the proposed fix) lets the driver go', () => {
  const { r, seen } = reapWorld(true, (d) => d.close());
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [{ reaped: 0, skipped: 1, contended: false }]);
});
