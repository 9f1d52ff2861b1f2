import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Completion, isErrno, type Kernel, Mutex } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  VM_LOCKED,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mmuNotifierRegister } from '../../src/mm/mmu-notifier-register.ts';
import {
  EAGAIN,
  MmuNotifier,
  type MmuNotifierOps,
  type MmuNotifierRange,
} from '../../src/mm/mmu-notifier-types.ts';
import { oomReap } from '../../src/mm/oom-reaper.ts';
import { eventsOf, runMm } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function* fill(mm: Mm, addr: number, pages: number): Generator<void, void, void> {
  for (let i = 0; i < pages; i++) yield* cpuWriteU32(mm, addr + i * PAGE_SIZE, i + 1);
}

test('oomReap unmaps private memory, keeps shared and mlocked VMAs, and marks the mm unstable', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const priv = yield* mmap(mm, { len: 3 * PAGE_SIZE, prot: RW, flags: ANON });
    const shared = yield* mmap(mm, {
      len: PAGE_SIZE,
      prot: RW,
      flags: MAP_SHARED | MAP_ANONYMOUS,
    });
    const locked = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: ANON });
    mm.findVma(locked)!.flags |= VM_LOCKED;
    yield* fill(mm, priv, 3);
    yield* fill(mm, shared, 1);
    yield* fill(mm, locked, 1);
    assert.equal(m.phys.usedFrames, 5);
    const res = yield* oomReap(mm);
    assert.deepEqual(res, { reaped: 1, skipped: 0, contended: false });
    assert.equal(mm.unstable, true);
    assert.equal(mm.pte(priv), undefined);
    assert.equal(m.phys.usedFrames, 2, 'the shared and the mlocked pages stay');
    assert.equal(yield* cpuReadU32(mm, shared), 1);
    assert.equal(yield* cpuReadU32(mm, locked), 1);
    try {
      yield* cpuReadU32(mm, priv);
      assert.fail('expected SIGBUS');
    } catch (e) {
      assert.ok(isErrno(e, 'EFAULT'), String(e));
      assert.match((e as Error).message, /SIGBUS/);
    }
  });
  assert.equal(r.ok, true, r.bug?.message);
  const starts = eventsOf(r.rec, 'mmu-start');
  assert.deepEqual(
    starts.map((e) => [e.event, e.blockable]),
    [['UNMAP', false]],
  );
});

test('oomReap reports a contended mmap_lock and reaps nothing', () => {
  const r = runMm(function* (m, k) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: ANON });
    yield* fill(mm, a, 1);
    const held = new Completion('held');
    const release = new Completion('release');
    k.spawn('writer', function* () {
      yield* mm.mmapLock.downWrite();
      held.complete();
      yield* release.wait();
      mm.mmapLock.upWrite();
    });
    yield* held.wait();
    assert.deepEqual(yield* oomReap(mm), { reaped: 0, skipped: 0, contended: true });
    assert.equal(mm.unstable, false);
    assert.equal(m.phys.usedFrames, 1);
    release.complete();
  });
  assert.equal(r.ok, true, r.bug?.message);
});

/** A KVM-like subscriber: a count of invalidations in progress and a sequence bumped at end. */
function kvmCounter() {
  const s = { inProgress: 0, seq: 0, starts: 0, ends: 0 };
  const ops: MmuNotifierOps = {
    *invalidateRangeStart() {
      s.inProgress++;
      s.starts++;
      return 0;
    },
    *invalidateRangeEnd() {
      s.inProgress--;
      s.seq++;
      s.ends++;
    },
  };
  return { s, ops };
}

/**
 * A driver mirroring [lo, hi): a non-blockable start takes its lock with a trylock and refuses
 * with EAGAIN when the lock is busy. It has no end op (a start that can fail must not).
 */
function refusingMirror(lock: Mutex, lo: number, hi: number) {
  const seen: MmuNotifierRange[] = [];
  const ops: MmuNotifierOps = {
    *invalidateRangeStart(_sub, range) {
      seen.push(range);
      if (range.end <= lo || range.start >= hi) return 0;
      if (range.blockable) yield* lock.lock();
      else if (!lock.tryLock()) return EAGAIN;
      lock.unlock();
      return 0;
    },
  };
  return { seen, ops };
}

function pairingRun(kvmFirst: boolean) {
  let kvm: ReturnType<typeof kvmCounter>['s'] | null = null;
  let mirrored = 0;
  const r = runMm(function* (m, k: Kernel) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    const b = yield* mmap(mm, { len: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    mirrored = a;
    yield* fill(mm, a, 2);
    yield* fill(mm, b, 2);
    const lock = new Mutex('mirror.lock');
    const counter = kvmCounter();
    kvm = counter.s;
    const mirror = refusingMirror(lock, a, a + 2 * PAGE_SIZE);
    const subs = [new MmuNotifier(counter.ops), new MmuNotifier(mirror.ops)];
    if (!kvmFirst) subs.reverse();
    for (const s of subs) yield* mmuNotifierRegister(s, mm);
    // The victim holds the driver lock (stuck in an allocation, say) while the reaper runs.
    const held = new Completion('held');
    const release = new Completion('release');
    k.spawn('victim', function* () {
      yield* lock.lock();
      held.complete();
      yield* release.wait();
      lock.unlock();
    });
    yield* held.wait();
    const res = yield* oomReap(mm);
    assert.deepEqual(res, { reaped: 1, skipped: 1, contended: false });
    assert.equal(mm.pte(a)?.kind, 'page', 'the refused VMA stays mapped');
    assert.equal(mm.pte(b), undefined, 'the other VMA was reaped');
    assert.equal(m.phys.usedFrames, 2);
    release.complete();
    assert.ok(mirror.seen.every((rg) => !rg.blockable));
  });
  return { r, kvm: kvm!, mirrored };
}

for (const kvmFirst of [true, false]) {
  test(`oomReap: a refused start skips the VMA without an end; the KVM counter stays balanced (KVM registered ${kvmFirst ? 'first' : 'second'})`, () => {
    const { r, kvm, mirrored } = pairingRun(kvmFirst);
    assert.equal(r.ok, true, r.bug?.message);
    assert.equal(kvm.inProgress, 0, 'N4: every start the subscriber saw got its end');
    assert.equal(kvm.starts, kvm.ends);
    assert.equal(kvm.starts, 2, 'the KVM subscriber saw both VMAs');
    // The failed range: its start-done says not ok, and the caller emitted no end for it.
    const failed = eventsOf(r.rec, 'mmu-start-done').filter((e) => e.ok === false);
    assert.equal(failed.length, 1);
    const failedStart = eventsOf(r.rec, 'mmu-start').find((e) => e.id === failed[0]!.id)!;
    assert.equal(failedStart.start, mirrored);
    assert.equal(
      eventsOf(r.rec, 'mmu-end').filter((e) => e.id === failed[0]!.id).length,
      0,
      'no range_end after a failed non-blocking start',
    );
  });
}

test('N6: a notifier that sleeps in a non-blockable start is reported as sleep-in-atomic', () => {
  const r = runMm(function* (m, k) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: ANON });
    yield* fill(mm, a, 1);
    const lock = new Mutex('driver.lock');
    yield* mmuNotifierRegister(
      new MmuNotifier({
        *invalidateRangeStart() {
          yield* lock.lock(); // mutex_lock regardless of blockability: the N6 bug
          lock.unlock();
          return 0;
        },
      }),
      mm,
    );
    const held = new Completion('held');
    k.spawn('victim', function* () {
      yield* lock.lock();
      held.complete();
      yield* new Completion('never').wait();
    });
    yield* held.wait();
    yield* oomReap(mm);
  });
  assert.equal(r.ok, false);
  assert.equal(r.bug?.rule, 'sleep-in-atomic');
  assert.match(r.bug!.message, /non-blocking/);
});

test('oomReap validates its argument', () => {
  const r = runMm(function* () {
    try {
      yield* oomReap({} as Mm);
      assert.fail('expected EINVAL');
    } catch (e) {
      assert.ok(isErrno(e, 'EINVAL'), String(e));
    }
  });
  assert.equal(r.ok, true, r.bug?.message);
});
