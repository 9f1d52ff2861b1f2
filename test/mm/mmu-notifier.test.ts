import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Completion,
  explore,
  isErrno,
  join,
  type Kernel,
  KernelBug,
  Mutex,
  preempt,
  sleep,
  TimedStrategy,
} from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import {
  clearYoung,
  invalidateRangeStartNonblock,
  rangeInit,
  testYoung,
} from '../../src/mm/mmu-notifier.ts';
import {
  mmuNotifierGet,
  mmuNotifierPut,
  mmuNotifierRegister,
  mmuNotifierSynchronize,
  mmuNotifierUnregister,
  mmuNotifierUnregisterNoRelease,
} from '../../src/mm/mmu-notifier-register.ts';
import { MmuNotifier, type MmuNotifierOps } from '../../src/mm/mmu-notifier-types.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { runMm } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function* mapped(mm: Mm, pages = 1) {
  const a = yield* mmap(mm, { len: pages * PAGE_SIZE, prot: RW, flags: ANON });
  for (let i = 0; i < pages; i++) yield* cpuWriteU32(mm, a + i * PAGE_SIZE, i + 1);
  return a;
}

test('get/put share one subscriber per ops and mm; the last put frees it after a grace period', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const stats = { allocs: 0, frees: 0 };
    const ops: MmuNotifierOps = {
      allocNotifier: () => {
        stats.allocs++;
        return new MmuNotifier(ops);
      },
      freeNotifier: () => {
        stats.frees++;
      },
    };
    const s1 = yield* mmuNotifierGet(ops, mm);
    const s2 = yield* mmuNotifierGet(ops, mm);
    assert.equal(s1, s2);
    assert.deepEqual([stats.allocs, s1.users, mm.count], [1, 2, 2]);
    yield* mmuNotifierPut(s1);
    assert.deepEqual([s1.users, s1.hashed], [1, true]);
    yield* mmuNotifierPut(s1);
    assert.deepEqual([s1.users, s1.hashed, stats.frees], [0, false, 0]);
    assert.equal(mm.count, 2, 'mmdrop waits for the grace period too');
    yield* mmuNotifierSynchronize(mm);
    assert.deepEqual([stats.frees, mm.count], [1, 1]);
    // A plain register / unregister pair: ->release runs, the mm reference comes back.
    let released = 0;
    const sub = new MmuNotifier({
      *release() {
        released++;
      },
    });
    yield* mmuNotifierRegister(sub, mm);
    assert.deepEqual([sub.users, mm.count, mm.notifiers!.list.length], [1, 2, 1]);
    yield* mmuNotifierUnregister(sub, mm);
    assert.deepEqual([released, mm.count, mm.notifiers!.list.length], [1, 1, 0]);
    // Errors change nothing.
    try {
      yield* mmuNotifierGet({}, mm);
      assert.fail('expected EINVAL');
    } catch (e) {
      assert.ok(isErrno(e, 'EINVAL'), String(e));
    }
    yield* mmput(mm);
    try {
      yield* mmuNotifierRegister(new MmuNotifier({}), mm);
      assert.fail('expected EINVAL');
    } catch (e) {
      assert.ok(isErrno(e, 'EINVAL'), String(e));
    }
    assert.equal(mm.count, 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('unregister_no_release unlinks without ->release, drops the mm reference, and frees only after a grace period', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    let released = 0;
    let freed = 0;
    const sub = new MmuNotifier({
      *release() {
        released++;
      },
    });
    yield* mmuNotifierRegister(sub, mm);
    assert.equal(mm.count, 2);
    yield* mmuNotifierUnregisterNoRelease(sub, mm, () => {
      freed++;
    });
    assert.deepEqual([released, sub.hashed, mm.count, freed], [0, false, 1, 0]);
    yield* mmuNotifierSynchronize(mm);
    assert.equal(freed, 1, 'the free runs after the SRCU grace period');
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

/** A subscriber whose start blocks (blockable ranges only) until `go` completes. */
function blockingSub(log: string[], entered: Completion, go: Completion) {
  return new MmuNotifier({
    *invalidateRangeStart(_s, range) {
      log.push(`start ${range.event}`);
      entered.complete();
      yield* go.wait();
      log.push('start returns');
      return 0;
    },
    *invalidateRangeEnd() {
      log.push('end');
    },
    freeNotifier() {
      log.push('free');
    },
  });
}

test('put during a running callback: the subscriber is freed only after the callback returned', () => {
  const log: string[] = [];
  const r = runMm(function* (m, k) {
    const mm = m.createMm();
    const a = yield* mapped(mm);
    const entered = new Completion('entered');
    const go = new Completion('go');
    const sub = blockingSub(log, entered, go);
    yield* mmuNotifierRegister(sub, mm);
    const unmapper = k.spawn('munmap', () => munmap(mm, a, PAGE_SIZE));
    yield* entered.wait();
    yield* mmuNotifierPut(sub);
    log.push('put');
    yield* sleep(1000);
    assert.ok(!log.includes('free'), 'no free while the callback runs');
    go.complete();
    yield* join(unmapper);
    yield* mmuNotifierSynchronize(mm);
    log.push('synchronized');
  });
  assert.equal(r.ok, true, r.bug?.message);
  // The end is not called: the subscriber was unlinked before the end walk.
  assert.deepEqual(log, ['start UNMAP', 'put', 'start returns', 'free', 'synchronized']);
});

test('unregister waits for a running callback (SRCU); afterwards no callback runs', () => {
  const log: string[] = [];
  const r = runMm(function* (m, k) {
    const mm = m.createMm();
    const a = yield* mapped(mm, 2);
    const entered = new Completion('entered');
    const go = new Completion('go');
    const sub = blockingSub(log, entered, go);
    yield* mmuNotifierRegister(sub, mm);
    const unmapper = k.spawn('munmap', () => munmap(mm, a, PAGE_SIZE));
    const unregistering = new Completion('unregistering');
    k.spawn('releaser', function* () {
      yield* unregistering.wait();
      log.push('go');
      go.complete();
    });
    yield* entered.wait();
    log.push('unregister');
    unregistering.complete();
    yield* mmuNotifierUnregister(sub, mm);
    log.push('unregistered');
    yield* join(unmapper);
    yield* munmap(mm, a + PAGE_SIZE, PAGE_SIZE);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(log, ['start UNMAP', 'unregister', 'go', 'start returns', 'unregistered']);
});

test('a blockable start may sleep and take a mutex; a non-blockable one that sleeps is a bug', () => {
  const lock = new Mutex('driver.lock');
  const sleepy: MmuNotifierOps = {
    *invalidateRangeStart() {
      yield* lock.lock();
      yield* sleep(100);
      lock.unlock();
      return 0;
    },
  };
  const ok = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mapped(mm);
    yield* mmuNotifierRegister(new MmuNotifier(sleepy), mm);
    yield* munmap(mm, a, PAGE_SIZE);
  });
  assert.equal(ok.ok, true, ok.bug?.message);
  const bad = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mapped(mm);
    yield* mmuNotifierRegister(new MmuNotifier(sleepy), mm);
    yield* invalidateRangeStartNonblock(
      rangeInit(mm, 'UNMAP', a, a + PAGE_SIZE, { blockable: false }),
    );
  });
  assert.equal(bad.ok, false);
  assert.equal(bad.bug?.rule, 'sleep-in-atomic');
});

test('aging notifiers: clear_young ORs every answer, test_young stops at the first young', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const asked: string[] = [];
    const sub = (name: string, young: boolean) =>
      new MmuNotifier({
        *clearYoung() {
          asked.push(`clear ${name}`);
          return young;
        },
        *testYoung() {
          asked.push(`test ${name}`);
          return young;
        },
      });
    yield* mmuNotifierRegister(sub('a', true), mm);
    yield* mmuNotifierRegister(sub('b', false), mm);
    assert.equal(yield* clearYoung(mm, 0, PAGE_SIZE), true);
    assert.equal(yield* testYoung(mm, 0), true);
    assert.deepEqual(asked, ['clear a', 'clear b', 'test a']);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

/**
 * N5: exit_mmap and mmu_notifier_unregister race. Both may call ->release (possibly at the
 * same time); after unregister returns no callback runs, and every reference comes back.
 * `idempotent` false gives the driver a release that frees its context: the second call is a
 * use after free.
 */
function n5World(stats: { twice: number; concurrent: number }, idempotent: boolean) {
  return (k: Kernel): void => {
    const m = new Machine(k, { frames: 16 });
    const mm = m.createMm();
    let releases = 0;
    let inside = 0;
    let unregistered = false;
    const ctx = new Completion('driver.ctx');
    const sub = new MmuNotifier({
      *release() {
        if (unregistered) throw new KernelBug('n5', '->release after unregister returned');
        releases++;
        inside++;
        if (inside > 1) stats.concurrent++;
        yield* preempt();
        if (!idempotent) {
          ctx.complete();
          ctx.free();
        }
        inside--;
      },
    });
    const setup = k.spawn('setup', function* () {
      yield* mapped(mm, 2);
      yield* mmuNotifierRegister(sub, mm);
    });
    k.spawn('exit', function* () {
      yield* join(setup);
      yield* mmput(mm);
    });
    k.spawn('unregister', function* () {
      yield* join(setup);
      yield* mmuNotifierUnregister(sub, mm);
      unregistered = true;
    });
    k.onQuiescence(() => {
      if (releases < 1 || releases > 2) throw new KernelBug('n5', `${releases} releases`);
      if (releases === 2) stats.twice++;
      if (mm.count !== 0 || m.phys.usedFrames !== 0)
        throw new KernelBug('leak', `mm_count ${mm.count}, ${m.phys.usedFrames} frames`);
    });
  };
}

test('N5: ->release may run twice when unregister races exit (pct, seed 1, 2000 runs)', () => {
  const stats = { twice: 0, concurrent: 0 };
  const res = explore(n5World(stats, true), { strategy: 'pct', seed: 1, runs: 2000 });
  assert.equal(res.failure, null, res.failure?.bug.message);
  assert.equal(res.runs, 2000);
  assert.ok(stats.twice > 0, 'some schedule called ->release twice');
  assert.ok(stats.concurrent > 0, 'some schedule ran the two calls concurrently');
});

test('N5: a driver whose ->release is not idempotent is caught (pct, seed 1, 2000 runs)', () => {
  const stats = { twice: 0, concurrent: 0 };
  const res = explore(n5World(stats, false), { strategy: 'pct', seed: 1, runs: 2000 });
  assert.notEqual(res.failure, null, 'the double release must be found');
  assert.equal(res.failure!.rule, 'use-after-free');
});

/** A subscriber with a start that only counts its calls. */
function countingSub(calls: { n: number }): MmuNotifier {
  return new MmuNotifier({
    *invalidateRangeStart() {
      calls.n++;
      return 0;
    },
  });
}

test('lifetime: a classic subscriber still reachable after unregister returned is caught at its next callback', () => {
  const calls = { n: 0 };
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mapped(mm, 2);
    const sub = countingSub(calls);
    yield* mmuNotifierRegister(sub, mm);
    yield* munmap(mm, a, PAGE_SIZE);
    yield* mmuNotifierUnregister(sub, mm);
    // A core that forgot to unlink it (the list as a broken hlist would leave it).
    mm.notifiers!.list.push(sub);
    sub.hashed = true;
    yield* munmap(mm, a + PAGE_SIZE, PAGE_SIZE);
  });
  assert.equal(calls.n, 1);
  assert.equal(r.bug?.rule, 'lifetime', r.bug?.message);
  assert.match(
    r.bug!.message,
    /->invalidate_range_start of a classic notifier after mmu_notifier_unregister returned/,
  );
});

test('lifetime: a callback of a subscriber freed by mmu_notifier_put is a use after free', () => {
  const calls = { n: 0 };
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mapped(mm, 1);
    const ops: MmuNotifierOps = {
      allocNotifier: () => countingSub(calls),
      freeNotifier: () => {},
    };
    const sub = yield* mmuNotifierGet(ops, mm);
    const subs = mm.notifiers!;
    yield* mmuNotifierPut(sub);
    yield* mmuNotifierSynchronize(mm);
    assert.equal(sub.freed, true);
    subs.list.push(sub);
    sub.hashed = true;
    yield* munmap(mm, a, PAGE_SIZE);
  });
  assert.equal(calls.n, 0);
  assert.equal(r.bug?.rule, 'use-after-free', r.bug?.message);
  assert.match(r.bug!.message, /after its ->free_notifier ran/);
});

test('a hashed subscriber missing from the list shows as a corrupted list when unlinked', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    yield* mapped(mm, 1);
    const other = countingSub({ n: 0 });
    const sub = countingSub({ n: 0 });
    yield* mmuNotifierRegister(other, mm);
    yield* mmuNotifierRegister(sub, mm);
    mm.notifiers!.list.splice(mm.notifiers!.list.indexOf(sub), 1);
    yield* mmuNotifierUnregister(sub, mm);
  });
  assert.equal(r.bug?.rule, 'warn', r.bug?.message);
  assert.match(r.bug!.message, /a hashed classic notifier is not on its mm's list/);
});

test('registration publishes the subscriptions only once it holds every rmap lock (mm_take_all_locks, then smp_store_release)', () => {
  const seen: string[] = [];
  const r = runMm(
    function* (m, k) {
      const mm = m.createMm();
      yield* mapped(mm, 1);
      // A reclaim walker inside the anon_vma lock: the registration waits for it.
      yield* mm.rmapLock.downRead();
      const reg = k.spawn('register', () => mmuNotifierRegister(countingSub({ n: 0 }), mm));
      for (let i = 0; i < 100 && reg.waitingOn === null; i++) yield* sleep(10);
      assert.notEqual(reg.waitingOn, null);
      seen.push(mm.notifiers === null ? 'unpublished while blocked' : 'published early');
      mm.rmapLock.upRead();
      yield* join(reg);
      seen.push(mm.notifiers?.list.length === 1 ? 'published with the subscriber' : 'missing');
    },
    { kernel: { strategy: new TimedStrategy() } },
  );
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, ['unpublished while blocked', 'published with the subscriber']);
});
