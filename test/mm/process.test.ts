// Processes (tgid, task->mm, limits), several machines in one world, and the era switches of
// the notifier core and of fork for pinned pages.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { isErrno, isKernelBug, Kernel, Mutex } from '../../src/index.ts';
import { cpuRead, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { fork } from '../../src/mm/fork.ts';
import { getUserPages, unpinUserPages } from '../../src/mm/gup.ts';
import { Machine } from '../../src/mm/machine.ts';
import { mmap } from '../../src/mm/mmap.ts';
import {
  invalidateRangeEnd,
  invalidateRangeStartNonblock,
  rangeInit,
} from '../../src/mm/mmu-notifier.ts';
import { mmuNotifierRegister } from '../../src/mm/mmu-notifier-register.ts';
import { EAGAIN, MmuNotifier } from '../../src/mm/mmu-notifier-types.ts';
import { createProcess, exitMm, forkProcess, getTaskMm, Process } from '../../src/mm/process.ts';
import { ANON, P, RW, runMm } from './helpers.ts';

test('a process: fork gives the child a copy and the limits; exit_mm clears task->mm before its mmput', () => {
  const seen: unknown[] = [];
  const r = runMm(function* (m) {
    const p = createProcess(m, { rlimitMemlock: 3 * P, capIpcLock: true });
    const a = yield* mmap(p.mm!, { len: P, prot: RW, flags: ANON });
    yield* cpuWriteU32(p.mm!, a, 7);
    const c = yield* forkProcess(p);
    seen.push(c.pid !== p.pid, c.rlimitMemlock, c.capIpcLock);
    seen.push(new Int32Array((yield* cpuRead(c.mm!, a, 4)).buffer)[0]);
    const mm = getTaskMm(p)!;
    seen.push(mm.users);
    yield* exitMm(p);
    seen.push(p.mm, getTaskMm(p), mm.users, mm.exited);
    yield* mmput(mm);
    seen.push(mm.exited);
    let err = '';
    try {
      yield* forkProcess(p);
    } catch (e) {
      if (isErrno(e)) err = e.code;
    }
    seen.push(err);
    yield* exitMm(c);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [true, 3 * P, true, 7, 2, null, null, 1, false, true, 'EINVAL']);
  assert.throws(
    () => new Process(r.machine, r.machine.createMm(), { rlimitMemlock: -1 }),
    /rlimitMemlock/,
  );
});

test('two machines in one world: disjoint pfns (and zero pages), unique mm ids, separate memory', () => {
  const k = new Kernel();
  const a = new Machine(k, { frames: 4 });
  const b = new Machine(k, { frames: 4 });
  installOracles(k, a);
  const seen: unknown[] = [];
  k.spawn('t', function* () {
    const ma = a.createMm();
    const mb = b.createMm();
    seen.push(ma.id !== mb.id);
    const pa = yield* mmap(ma, { len: P, prot: RW, flags: ANON });
    const pb = yield* mmap(mb, { len: P, prot: RW, flags: ANON });
    yield* cpuRead(ma, pa, 4);
    yield* cpuRead(mb, pb, 4);
    seen.push(ma.pte(pa)!.page !== mb.pte(pb)!.page);
    yield* cpuWriteU32(ma, pa, 1);
    yield* cpuWriteU32(mb, pb, 2);
    const fa = ma.pte(pa)!.page!.pfn;
    const fb = mb.pte(pb)!.page!.pfn;
    seen.push(fa !== fb, a.phys.page(fb), b.phys.page(fb)?.pfn === fb);
    yield* mmput(ma);
    yield* mmput(mb);
  });
  const r = k.run();
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [true, true, true, undefined, true]);
});

test('the legacy notifier core: a failed non-blockable start is only reported, and ends may sleep', () => {
  const calls: string[] = [];
  const build = (legacy: boolean) =>
    runMm(
      function* (m) {
        const mm = m.createMm();
        const failing = new MmuNotifier({
          *invalidateRangeStart(_s, range) {
            calls.push('start');
            return range.blockable ? 0 : EAGAIN;
          },
          *invalidateRangeEnd() {
            calls.push('end');
          },
        });
        yield* mmuNotifierRegister(failing, mm);
        const range = rangeInit(mm, 'UNMAP', 0x10000, 0x11000, { blockable: false });
        calls.push(`ret ${yield* invalidateRangeStartNonblock(range)}`);
        const sleeper = new MmuNotifier({
          *invalidateRangeEnd() {
            const lock = new Mutex('sleeps');
            yield* lock.lock();
            lock.unlock();
            calls.push('slept');
          },
        });
        yield* mmuNotifierRegister(sleeper, mm);
        const ok = rangeInit(mm, 'UNMAP', 0x20000, 0x21000, { blockable: false });
        mm.notifiers!.list.splice(0, 1);
        if ((yield* invalidateRangeStartNonblock(ok)) === 0) yield* invalidateRangeEnd(ok);
      },
      { machine: { legacyNotifierCore: legacy } },
    );
  const legacy = build(true);
  assert.equal(legacy.ok, true, legacy.bug?.message);
  assert.deepEqual(calls, ['start', 'ret -11', 'slept']);
  calls.length = 0;
  const today = build(false);
  assert.ok(isKernelBug(today.bug, 'warn'), today.bug?.message);
  assert.match(today.bug!.message, /a subscriber whose start can fail has an end op/);
});

test("fork of a pinned page: copied for the child since v5.9; before, the parent's next write leaves the pin behind", () => {
  const run = (early: boolean) => {
    let pinnedSees = 0;
    const r = runMm(
      function* (m) {
        const mm = m.createMm();
        const a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
        yield* cpuWriteU32(mm, a, 1);
        yield* mm.mmapLock.downRead();
        const [page] = yield* getUserPages(mm, a, 1, { longterm: true, write: true });
        mm.mmapLock.upRead();
        const child = yield* fork(mm);
        yield* cpuWriteU32(mm, a, 2);
        const b = new Uint8Array(4);
        page!.data.read(0, b, 0, 4);
        pinnedSees = new Int32Array(b.buffer)[0]!;
        unpinUserPages(m, [page!], { longterm: true });
        yield* mmput(child);
        yield* mmput(mm);
      },
      { machine: { earlyCowPinned: early } },
    );
    assert.equal(r.ok, true, r.bug?.message);
    return pinnedSees;
  };
  assert.equal(run(true), 2);
  assert.equal(run(false), 1);
});
