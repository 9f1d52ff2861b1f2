// The interval-notifier mutants of mmu-notifier.md §5, each found by exploration within
// 10,000 pct runs; the correct code is clean under the same budget (interval-explore.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { Completion, explore, type Kernel, KernelBug, Mutex, preempt } from '../../src/index.ts';
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
import { mmdrop, mmgrab } from '../../src/mm/mm-refs.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mmuNotifierRegister, mmuNotifierUnregister } from '../../src/mm/mmu-notifier-register.ts';
import { EAGAIN, MmuNotifier } from '../../src/mm/mmu-notifier-types.ts';
import { oomReap } from '../../src/mm/oom-reaper.ts';
import { intervalWorld, mutations } from './interval-worlds.ts';

const PCT = { strategy: 'pct', seed: 1, runs: 10_000 } as const;

test('N1 itree.insert-idle-rule: an insert during an invalidation misses it (fork world, pct seed 1)', () => {
  const clean = explore(intervalWorld(mutations.fork!), PCT);
  assert.equal(clean.failure, null);
  const r = explore(intervalWorld(mutations.fork!), {
    ...PCT,
    mutants: ['itree.insert-idle-rule'],
  });
  assert.equal(r.failure?.rule, 'coherence', r.failure?.bug.message);
});

test('N2 mirror.valid-flag: the boolean ABA commits a stale snapshot (madvise and mprotect worlds, pct seed 1)', () => {
  for (const m of [mutations.madvise!, mutations.mprotect!]) {
    const r = explore(intervalWorld(m), { ...PCT, mutants: ['mirror.valid-flag'] });
    assert.equal(r.failure?.rule, 'coherence', r.failure?.bug.message);
    assert.match(r.failure.bug.message, /device mirror commits/);
  }
});

test('N3 mirror.retry-outside-lock: the retry check races set_seq (munmap and reclaim worlds, pct seed 1)', () => {
  for (const m of [mutations.munmap!, mutations.reclaim!]) {
    const r = explore(intervalWorld(m), { ...PCT, mutants: ['mirror.retry-outside-lock'] });
    assert.equal(r.failure?.rule, 'coherence', r.failure?.bug.message);
  }
});

test('N6 mirror.nonblock-sleeps: a sleeping lock in a non-blockable callback (OOM reaper world, pct seed 1)', () => {
  const r = explore(intervalWorld(mutations.oomReaper!), {
    ...PCT,
    mutants: ['mirror.nonblock-sleeps'],
  });
  assert.equal(r.failure?.rule, 'sleep-in-atomic', r.failure?.bug.message);
  assert.match(r.failure.bug.message, /inside a non-blocking section/);
});

/**
 * N4: a KVM-style counter subscriber and a mirror that refuses non-blockable starts while its
 * lock is busy; the OOM reaper runs while a victim thread may hold that lock. Afterwards the
 * counter must be balanced.
 */
function unpairedWorld(k: Kernel): void {
  const machine = new Machine(k, { frames: 8 });
  installOracles(k, machine);
  const mm = machine.createMm();
  const lock = new Mutex('mirror.lock');
  let inProgress = 0;
  const kvm = new MmuNotifier({
    *invalidateRangeStart() {
      inProgress++;
      return 0;
    },
    *invalidateRangeEnd() {
      inProgress--;
    },
  });
  const mirror = new MmuNotifier({
    *invalidateRangeStart(_s, range) {
      if (range.blockable) yield* lock.lock();
      else if (!lock.tryLock()) return EAGAIN;
      lock.unlock();
      return 0;
    },
  });
  const ready = new Completion('ready');
  const reaped = new Completion('reaped');
  k.spawn('process', function* () {
    const a = yield* mmap(mm, {
      len: 2 * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    yield* cpuWriteU32(mm, a, 1);
    yield* mmuNotifierRegister(kvm, mm);
    yield* mmuNotifierRegister(mirror, mm);
    mmgrab(mm);
    ready.completeAll();
    // The victim holds the driver lock for a while (stuck allocating, say).
    yield* lock.lock();
    yield* preempt();
    lock.unlock();
    yield* reaped.wait();
    yield* mmput(mm);
  });
  k.spawn('oom_reaper', function* () {
    yield* ready.wait();
    yield* oomReap(mm);
    if (inProgress !== 0)
      throw new KernelBug(
        'notifier-pairing',
        `the KVM-style subscriber is left with ${inProgress} invalidation(s) in progress`,
      );
    yield* mmuNotifierUnregister(mirror, mm);
    yield* mmuNotifierUnregister(kvm, mm);
    mmdrop(mm);
    reaped.complete();
  });
}

test('N4 notifier.nonblock-unpaired: a refused non-blocking start leaves a subscriber unpaired (pct seed 1)', () => {
  const clean = explore(unpairedWorld, PCT);
  assert.equal(clean.failure, null, clean.failure?.bug.message);
  const r = explore(unpairedWorld, { ...PCT, mutants: ['notifier.nonblock-unpaired'] });
  assert.equal(r.failure?.rule, 'notifier-pairing', r.failure?.bug.message);
  assert.match(r.failure.bug.message, /left with 1 invalidation/);
});
