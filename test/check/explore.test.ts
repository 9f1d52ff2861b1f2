// Explorer tests: each states strategy, seed and budget.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explore, type Kernel, replay, TraceRecorder, type WorldBuilder } from '../../src/index.ts';
import {
  abbaWorld,
  counterWorld,
  nestedReadWorld,
  spinSleepWorld,
  srcuWorld,
  wakeupWorld,
} from './worlds.ts';

function traceOf(build: WorldBuilder, token: string): string {
  let rec: TraceRecorder | undefined;
  replay(build, token, { onKernel: (k: Kernel) => (rec = new TraceRecorder(k.trace)) });
  return rec!.toText();
}

test('found: lost update (pct, seed 1, 1,000 runs); minimised to ≤ 2 preemptions; replay is exact', () => {
  const r = explore(counterWorld(false), { strategy: 'pct', seed: 1, runs: 1000 });
  assert.equal(r.stoppedBy, 'failure');
  const f = r.failure!;
  assert.equal(f.rule, 'lost-update');
  assert.ok(f.preemptions <= 2, `minimised to ${f.preemptions} preemptions`);
  assert.ok(f.steps <= f.original.steps);
  const again = replay(counterWorld(false), f.token);
  assert.equal(again.result.bug?.message, f.bug.message);
  assert.deepEqual(again.result.decisions, f.decisions);
  assert.equal(traceOf(counterWorld(false), f.token), traceOf(counterWorld(false), f.token));
  assert.match(traceOf(counterWorld(false), f.token), /bug rule="lost-update"/);
});

test('found: lost update under random (seed 3, 1,000 runs) and dfs (bound 1)', () => {
  const rnd = explore(counterWorld(false), { strategy: 'random', seed: 3, runs: 1000 });
  assert.equal(rnd.failure?.rule, 'lost-update');
  const dfs = explore(counterWorld(false), { strategy: 'dfs', preemptions: 1, runs: 1000 });
  assert.equal(dfs.failure?.rule, 'lost-update');
  assert.equal(dfs.failure!.preemptions, 1);
});

test('found: ABBA deadlock with lockdep off (pct, seed 1, 1,000 runs), with the wait-for chain', () => {
  const r = explore(abbaWorld(false, false), { strategy: 'pct', seed: 1, runs: 1000 });
  assert.equal(r.failure?.rule, 'deadlock');
  assert.match(
    r.failure!.bug.message,
    /ab waits on mutex b held by ba; ba waits on mutex a held by ab/,
  );
});

test('found: lock-order inversion on the very first schedule, which did not deadlock (dfs, bound 0)', () => {
  const r = explore(abbaWorld(false), { strategy: 'dfs', preemptions: 0, runs: 10 });
  assert.equal(r.failure?.rule, 'lock-order');
  assert.equal(r.failure!.run, 0);
  assert.equal(r.failure!.preemptions, 0);
});

test('found: sleeping under a spinlock (random, seed 1, 10 runs)', () => {
  const r = explore(spinSleepWorld(true), { strategy: 'random', seed: 1, runs: 10 });
  assert.equal(r.failure?.rule, 'sleep-in-atomic');
  assert.match(r.failure!.bug.message, /in task invalidate holding \[page_table_lock\]/);
});

test('found: missed wake-up with a hand-rolled flag (pct, seed 2, 1,000 runs)', () => {
  const r = explore(wakeupWorld(true), { strategy: 'pct', seed: 2, runs: 1000 });
  assert.equal(r.failure?.rule, 'deadlock');
  assert.match(r.failure!.bug.message, /waiter waits on waitqueue event/);
});

test('found: nested rwsem read behind a queued writer deadlocks (pct, seed 1, 1,000 runs)', () => {
  const r = explore(nestedReadWorld(true), { strategy: 'pct', seed: 1, runs: 1000 });
  assert.equal(r.failure?.rule, 'deadlock');
  assert.match(r.failure!.bug.message, /reader waits on rwsem mmap_lock held by reader/);
});

const cleanWorlds: [string, WorldBuilder][] = [
  ['locked counter', counterWorld(true)],
  ['ordered locks', abbaWorld(true)],
  ['wait_event', wakeupWorld(false)],
  ['single rwsem read', nestedReadWorld(false)],
  ['sleep after unlock', spinSleepWorld(false)],
  ['srcu grace period', srcuWorld()],
];

for (const [name, world] of cleanWorlds) {
  test(`clean: ${name} — dfs exhaustive at preemption bound 2, and pct (seed 1, depth 3) for 10,000 runs`, () => {
    const dfs = explore(world, { strategy: 'dfs', preemptions: 2, runs: 200_000 });
    assert.equal(dfs.failure, null, dfs.failure?.bug.message);
    assert.equal(dfs.stoppedBy, 'exhausted');
    assert.equal(dfs.dfs?.exhausted, true);
    assert.ok(dfs.runs > 1);
    const pct = explore(world, { strategy: 'pct', seed: 1, depth: 3, runs: 10_000 });
    assert.equal(pct.failure, null, pct.failure?.bug.message);
    assert.equal(pct.runs, 10_000);
  });
}

test('explore reports statistics and respects a time budget', () => {
  let t = 0;
  const r = explore(counterWorld(true), {
    strategy: 'random',
    seed: 1,
    runs: 1_000_000,
    timeBudgetMs: 5,
    clock: () => t++,
  });
  assert.equal(r.stoppedBy, 'time');
  assert.equal(r.runs, 5);
  assert.ok(r.steps > 0 && r.contextSwitches > 0);
  assert.equal(
    explore(counterWorld(true), { strategy: 'random', runs: 3 }).elapsedMs,
    0,
    'no clock, no real time',
  );
  assert.throws(
    () => explore(counterWorld(true), { strategy: 'random', timeBudgetMs: 5 }),
    /EINVAL: explore: timeBudgetMs needs a clock/,
  );
});

test('explore and replay reject bad options and tokens with EINVAL naming the problem', () => {
  const w = counterWorld(true);
  assert.throws(() => explore(w, { strategy: 'bogus' as 'pct' }), /EINVAL: explore: strategy/);
  assert.throws(
    () => explore(w, { strategy: 'dfs', preemptions: 4 }),
    /EINVAL: explore: preemptions/,
  );
  assert.throws(() => explore(w, { strategy: 'pct', runs: 0 }), /EINVAL: explore: runs/);
  assert.throws(() => explore(w, { strategy: 'pct', seed: -1 }), /EINVAL: explore: seed/);
  assert.throws(() => replay(w, 'nonsense'), /EINVAL: not an odpsim replay token/);
  assert.throws(() => replay(w, 'odp2.pct.1.1.!.0000000'), /EINVAL: the replay token was altered/);
});

test('minimisation bounds each replay by the failing run: schedules that spin do not cost the whole step limit (random, seed 1, 50 runs)', () => {
  // `spinner` waits for `setter` by yielding; under the default strategy (which replays run
  // into once their decisions end) it is always picked again and spins to the step limit.
  const world: WorldBuilder = (k: Kernel) => {
    let set = false;
    k.spawn('spinner', function* () {
      while (!set) yield;
    });
    k.spawn('setter', function* () {
      yield;
      set = true;
      k.bug('coherence', 'the setter ran');
    });
  };
  const kernels: Kernel[] = [];
  const r = explore(world, {
    strategy: 'random',
    seed: 1,
    runs: 50,
    maxSteps: 50_000_000,
    onKernel: (k) => kernels.push(k),
  });
  assert.equal(r.failure?.rule, 'coherence');
  const total = kernels.reduce((n, k) => n + k.steps, 0);
  // Without the bound one prefix replay alone would run 50,000,000 steps.
  assert.ok(total < 5_000_000, `${total} steps in all`);
  const again = replay(world, r.failure!.token);
  assert.equal(again.result.bug?.message, r.failure!.bug.message);
});
