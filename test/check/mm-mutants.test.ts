// Each mm mutant is found by exploration; the correct code is clean under the same budget
// (kvm-explore.test.ts). Strategy, seed and budget are stated per test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { explore, type Kernel, Mutex } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { Machine } from '../../src/mm/machine.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mmuNotifierRegister, mmuNotifierUnregister } from '../../src/mm/mmu-notifier-register.ts';
import { MmuNotifier } from '../../src/mm/mmu-notifier-types.ts';
import { kvmWorld, mutations } from './kvm-worlds.ts';

test('mutant mm.free-before-start is found racing munmap (pct, seed 1, ≤ 10,000 runs)', () => {
  const r = explore(kvmWorld(mutations.munmap!), {
    strategy: 'pct',
    seed: 1,
    runs: 10_000,
    mutants: ['mm.free-before-start'],
  });
  assert.ok(r.failure !== null, 'not found');
  assert.match(r.failure.rule, /coherence|use-after-free/);
});

test('mutant kvm.retry-ignores-in-progress is found racing munmap and reclaim (pct, seed 1, ≤ 10,000 runs)', () => {
  for (const m of [mutations.munmap!, mutations.reclaim!]) {
    const r = explore(kvmWorld(m), {
      strategy: 'pct',
      seed: 1,
      runs: 10_000,
      mutants: ['kvm.retry-ignores-in-progress'],
    });
    assert.equal(r.failure?.rule, 'coherence', r.failure?.bug.message);
    assert.match(r.failure.bug.message, /device kvm/);
  }
});

/** A COW fault while a client whose start callback sleeps (takes a mutex) is registered. */
function sleepingClientWorld(k: Kernel): void {
  const machine = new Machine(k, { frames: 8 });
  installOracles(k, machine);
  const mm = machine.createMm();
  const lock = new Mutex('client.lock');
  const sub = new MmuNotifier({
    *invalidateRangeStart() {
      yield* lock.lock();
      lock.unlock();
      return 0;
    },
  });
  k.spawn('process', function* () {
    yield* mmuNotifierRegister(sub, mm);
    const a = yield* mmap(mm, {
      len: PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    yield* cpuReadU32(mm, a);
    yield* cpuWriteU32(mm, a, 1);
    yield* mmuNotifierUnregister(sub, mm);
    yield* mmput(mm);
  });
}

test('mutant mm.notifier-under-ptl is reported as sleeping in atomic context (pct, seed 1, ≤ 10,000 runs)', () => {
  const clean = explore(sleepingClientWorld, { strategy: 'pct', seed: 1, runs: 200 });
  assert.equal(clean.failure, null, clean.failure?.bug.message);
  const r = explore(sleepingClientWorld, {
    strategy: 'pct',
    seed: 1,
    runs: 10_000,
    mutants: ['mm.notifier-under-ptl'],
  });
  assert.equal(r.failure?.rule, 'sleep-in-atomic', r.failure?.bug.message);
  assert.match(r.failure.bug.message, /holding \[mm1\.mmap_lock\(read\), mm1\.page_table_lock\]/);
});

test('explore rejects unknown mutants with EINVAL naming the known ones', () => {
  assert.throws(
    () => explore(sleepingClientWorld, { strategy: 'pct', mutants: ['nope'] }),
    /EINVAL: unknown mutant "nope" \(known: mm\.free-before-start/,
  );
});

test('mutant mm.fork-end-range-mismatch is found by the pairing oracle racing fork (pct, seed 1, ≤ 10,000 runs)', () => {
  const r = explore(kvmWorld(mutations.fork!), {
    strategy: 'pct',
    seed: 1,
    runs: 10_000,
    mutants: ['mm.fork-end-range-mismatch'],
  });
  assert.equal(r.failure?.rule, 'notifier-pairing', r.failure?.bug.message);
  assert.match(r.failure.bug.message, /does not match its start .*\(PROTECTION_PAGE\)/);
});
