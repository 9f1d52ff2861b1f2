// The coverage collector: what a hand-made world reaches, racing pairs only for paths that
// overlap in two tasks of one machine, merging, and the report against a universe.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Coverage, type CoverageData, pairUniverse } from '../../src/check/coverage.ts';
import { runWorld } from '../../src/check/run-world.ts';
import { COVERAGE_UNIVERSE } from '../../src/cli/coverage-report.ts';
import { sleep } from '../../src/kernel/context.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { ReplayStrategy } from '../../src/kernel/strategies/replay.ts';
import { TimedStrategy } from '../../src/kernel/strategies/timed.ts';
import type { Co } from '../../src/kernel/task.ts';
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
import { MM_PATHS, type MmPathName, mmPath } from '../../src/mm/mm-path.ts';
import { mmap } from '../../src/mm/mmap.ts';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
} from '../../src/mm/mmu-interval-notifier.ts';
import { MmuIntervalNotifier } from '../../src/mm/mmu-interval-notifier-types.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { findScenario, resolveParams, SCENARIOS } from '../../src/scenarios/index.ts';

/** Runs `build` on a fresh kernel with `cov` attached, tasks in virtual-time order. */
function run(cov: Coverage, build: (k: Kernel) => void): void {
  const k = new Kernel({ strategy: new TimedStrategy() });
  cov.attach(k);
  build(k);
  const r = k.run();
  assert.ok(r.ok, r.bug?.message);
}

/** A path `fn` of `mm` whose body takes `ns` of virtual time (tasks due earlier run meanwhile). */
function* busy(fn: MmPathName, mm: Mm, ns: number): Co {
  yield* mmPath(fn, mm, sleep(ns));
}

const reachedOf = (cov: Coverage) => cov.report(COVERAGE_UNIVERSE);

test('a world that maps, writes, unmaps with an interval subscriber reaches those paths and callbacks', () => {
  const cov = new Coverage();
  run(cov, (k) => {
    const machine = new Machine(k);
    const mm = machine.createMm();
    k.spawn('main', function* () {
      const sub = new MmuIntervalNotifier({
        client: 'dmirror',
        *invalidate() {
          return true;
        },
      });
      const a = yield* mmap(mm, {
        len: 2 * PAGE_SIZE,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      yield* mmuIntervalNotifierInsert(sub, mm, a, 2 * PAGE_SIZE, sub.ops);
      yield* cpuWriteU32(mm, a, 1);
      yield* munmap(mm, a, 2 * PAGE_SIZE);
      yield* mmuIntervalNotifierRemove(sub);
      yield* mmput(mm);
    });
  });
  const r = reachedOf(cov);
  assert.equal(r.runs, 1);
  assert.deepEqual(Object.keys(r.paths.reached), [
    'do_mmap',
    'do_vmi_munmap',
    'exit_mmap',
    'handle_mm_fault',
    'mmu_interval_notifier_insert',
    'mmu_interval_notifier_remove',
    'mmu_notifier_release',
  ]);
  assert.deepEqual(r.callbacks.reached, { 'dmirror invalidate UNMAP': 1 });
  assert.deepEqual(r.races.reached, {}, 'one task: nothing raced');
  assert.deepEqual(r.paths.outside, {});
  assert.equal(r.paths.total, MM_PATHS.length);
  assert.equal(r.paths.missing.length, MM_PATHS.length - 7);
});

test('a callback of ops that name no client is reached outside the lists', () => {
  const cov = new Coverage();
  run(cov, (k) => {
    const mm = new Machine(k).createMm();
    k.spawn('main', function* () {
      const sub = new MmuIntervalNotifier({
        *invalidate() {
          return true;
        },
      });
      const a = yield* mmap(mm, {
        len: PAGE_SIZE,
        prot: PROT_READ,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      yield* mmuIntervalNotifierInsert(sub, mm, a, PAGE_SIZE, sub.ops);
      yield* munmap(mm, a, PAGE_SIZE);
      yield* mmuIntervalNotifierRemove(sub);
    });
  });
  assert.deepEqual(reachedOf(cov).callbacks.outside, { 'unnamed invalidate UNMAP': 1 });
});

test('racing pairs: overlap in two tasks of one machine counts, once per pair in either order', () => {
  const cov = new Coverage();
  run(cov, (k) => {
    const machine = new Machine(k);
    const [a, b] = [machine.createMm(), machine.createMm()];
    // t=0: one begins and sleeps; two begins while it runs (another mm of the same machine).
    k.spawn('one', () => busy('do_mmap', a, 100));
    k.spawn('two', () => busy('handle_mm_fault', b, 10));
    // t=200: both of these end before the next begins: no overlap.
    k.spawn('three', function* () {
      yield* sleep(200);
      yield* busy('try_to_unmap', a, 10);
      yield* busy('do_mmap', a, 10);
    });
    // Nested in one task: not a race.
    k.spawn('four', function* () {
      yield* sleep(300);
      yield* mmPath('do_mprotect_pkey', a, busy('handle_mm_fault', a, 10));
    });
  });
  const r = reachedOf(cov);
  assert.deepEqual(r.races.reached, { 'do_mmap handle_mm_fault': 1 });
});

test('racing pairs: a path with itself counts; paths on two machines do not race', () => {
  const cov = new Coverage();
  run(cov, (k) => {
    const [m1, m2] = [new Machine(k), new Machine(k)];
    const [a, b] = [m1.createMm(), m2.createMm()];
    k.spawn('x1', () => busy('handle_mm_fault', a, 100));
    k.spawn('x2', () => busy('handle_mm_fault', a, 100));
    k.spawn('y', () => busy('dup_mmap', b, 100));
  });
  assert.deepEqual(reachedOf(cov).races.reached, { 'handle_mm_fault handle_mm_fault': 1 });
});

test('merge adds runs up; an item counts once per run however often it is reached', () => {
  const twice = (cov: Coverage) =>
    run(cov, (k) => {
      const mm = new Machine(k).createMm();
      k.spawn('f1', () => busy('handle_mm_fault', mm, 10));
      k.spawn('f2', () => busy('handle_mm_fault', mm, 10));
      k.spawn('f3', () => busy('handle_mm_fault', mm, 10));
    });
  const one = new Coverage();
  twice(one);
  const other = new Coverage();
  twice(other);
  twice(other);
  // Through plain data, as a worker thread sends it.
  const data: CoverageData = structuredClone(other.data());
  one.merge(data);
  const d = one.data();
  assert.equal(d.runs, 3);
  assert.deepEqual(d.paths, { handle_mm_fault: 3 });
  assert.deepEqual(d.races, { 'handle_mm_fault handle_mm_fault': 3 });
  // Attaching after a merge counts the new run afresh.
  twice(one);
  assert.deepEqual(one.data().paths, { handle_mm_fault: 4 });
  assert.deepEqual(Coverage.from(one.data()).data(), one.data());
});

test('every built-in scenario (each ODP design too) reaches only callbacks and paths in the lists', () => {
  // One run without preemption each: every client names its kind, every event is listed.
  const cov = new Coverage();
  const worlds: [string, Record<string, number>][] = [
    ...SCENARIOS.map((s): [string, Record<string, number>] => [s.name, {}]),
    ['rdma-odp', { design: 2014 }],
    ['rdma-odp', { design: 2018 }],
    ['rdma-odp', { design: 2020, sw: 1 }],
    ['nouveau-exit', { fix: 1 }],
  ];
  for (const [name, set] of worlds) {
    const s = findScenario(name);
    const params = resolveParams(s, set);
    runWorld((k) => s.build(k, params), new ReplayStrategy([], false), 1, {
      maxSteps: 2_000_000,
      onStepLimit: 'pass',
      mutants: [],
      onKernel: (k) => void cov.attach(k),
    });
  }
  const r = reachedOf(cov);
  assert.deepEqual(r.callbacks.outside, {});
  assert.deepEqual(r.paths.outside, {});
  for (const kind of ['dmirror', 'kvm', 'sva', 'nouveau', 'rdma-odp-2014', 'rdma-odp-2018', 'rxe'])
    assert.ok(
      Object.keys(r.callbacks.reached).some((item) => item.startsWith(`${kind} `)),
      `${kind} reached`,
    );
});

test('the universe: every pair of paths once, each path with itself', () => {
  const n = MM_PATHS.length;
  const pairs = pairUniverse(MM_PATHS);
  assert.equal(pairs.length, (n * (n + 1)) / 2);
  assert.equal(new Set(pairs).size, pairs.length);
  assert.ok(pairs.includes('handle_mm_fault try_to_unmap'));
  assert.ok(!pairs.includes('try_to_unmap handle_mm_fault'), 'pair names in order');
  assert.equal(new Set(COVERAGE_UNIVERSE.callbacks).size, COVERAGE_UNIVERSE.callbacks.length);
});

test('the report lists apart the missing items its universe gives a condition, and only missing ones', () => {
  const cov = new Coverage();
  run(cov, (k) => {
    const m = new Machine(k, { frames: 4 });
    const mm = m.createMm();
    k.spawn('t', function* () {
      yield* busy('do_mmap', mm, 1);
      yield* mmput(mm);
    });
  });
  const r = cov.report({
    callbacks: ['a cb', 'b cb'],
    paths: ['do_mmap', 'exit_mmap', 'do_mremap'],
    condition: (item) => (item === 'b cb' || item.startsWith('do_') ? 'with a setting' : null),
  });
  assert.deepEqual(r.callbacks.missing, ['a cb', 'b cb']);
  assert.deepEqual(r.callbacks.conditional, { 'b cb': 'with a setting' });
  // do_mmap ran: its condition does not make it missing.
  assert.deepEqual(r.paths.missing, ['do_mremap']);
  assert.deepEqual(r.paths.conditional, { do_mremap: 'with a setting' });
  assert.deepEqual(r.races.conditional, {});
});
