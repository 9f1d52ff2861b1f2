import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTimeline, renderTimeline, type TimelineEntry } from '../../src/cli/timeline.ts';
import {
  Completion,
  delay,
  explore,
  Kernel,
  Mutex,
  replay,
  type Strategy,
  TimedStrategy,
  TraceRecorder,
} from '../../src/index.ts';
import { findScenario, resolveParams } from '../../src/scenarios/index.ts';

const LOCK_LINES = new Set(['lock-acquire', 'lock-contend', 'lock-release', 'lock-cycle']);
const lockLines = (t: readonly TimelineEntry[]) => t.filter((e) => LOCK_LINES.has(e.event));

function scenarioRun(name: string, strategy: Strategy): TraceRecorder {
  const k = new Kernel({ strategy, maxSteps: 1_000_000 });
  const rec = new TraceRecorder(k.trace);
  const s = findScenario(name);
  s.build(k, resolveParams(s, {}));
  const r = k.run();
  assert.equal(r.ok, true, r.bug?.message);
  return rec;
}

test('the default timeline leaves locks out and shows the interval sequence reads and checks', () => {
  // dmirror-race: the HMM test device faults through an interval notifier while a mutator
  // invalidates its range.
  const rec = scenarioRun('dmirror-race', new TimedStrategy());
  const t = buildTimeline(rec);
  assert.deepEqual(lockLines(t), []);
  assert.ok(!t.some((e) => /^(lock|unlock|waits for) /.test(e.text)));
  const begin = t.find((e) => e.event === 'seq-begin');
  assert.match(
    begin?.text ?? '',
    /^interval \[0x[0-9a-f]+, 0x[0-9a-f]+\) mm\d+: mmu_interval_read_begin → \d+/,
  );
  const check = t.find((e) => e.event === 'seq-check');
  assert.match(check?.text ?? '', /mmu_interval_read_retry\(\d+\) → (no )?retry \(seq \d+\)$/);
  assert.ok(t.indexOf(begin!) < t.indexOf(check!));
  assert.ok(
    t.some(
      (e) => e.event === 'seq-invalidate' && /^interval tree mm\d+: invalidation ends/.test(e.text),
    ),
  );
  assert.ok(t.some((e) => e.event === 'mmu-start'));
  assert.ok(t.some((e) => e.event === 'dev-map'));
  // 'full' has the same protocol lines plus the locks.
  const full = buildTimeline(rec, 'full');
  assert.ok(lockLines(full).length > 0);
  const protocol = (x: readonly TimelineEntry[]) =>
    x.filter((e) => !LOCK_LINES.has(e.event) && e.event !== 'preempt').map((e) => e.text);
  assert.deepEqual(
    protocol(full).filter((s) => !/(sleeps on |\()(mutex|spinlock|rwsem) /.test(s)),
    protocol(t),
  );
});

test('lock waits are lock events: the default hides their sleeps and wake-ups, keeps the rest', () => {
  // Timed: a takes m and spends 100 ns in it; b contends for m and sleeps; c waits for a.
  const k = new Kernel({ strategy: new TimedStrategy() });
  const rec = new TraceRecorder(k.trace);
  const m = new Mutex('m');
  const ready = new Completion('ready');
  k.spawn('a', function* () {
    yield* m.lock();
    yield* delay(100);
    m.unlock();
    ready.complete();
  });
  k.spawn('b', function* () {
    yield* m.lock();
    m.unlock();
  });
  k.spawn('c', function* () {
    yield* ready.wait();
  });
  assert.equal(k.run().ok, true);
  const full = buildTimeline(rec, 'full');
  const t = buildTimeline(rec);
  const onLock = (x: readonly TimelineEntry[]) => x.filter((e) => /mutex m\b/.test(e.text));
  assert.deepEqual(
    onLock(full).map((e) => [e.task, e.event]),
    [
      ['b', 'sleep'],
      ['a', 'wake'],
    ],
  );
  assert.ok(lockLines(full).some((e) => e.task === 'b' && e.event === 'lock-contend'));
  assert.deepEqual(onLock(t), []);
  assert.deepEqual(lockLines(t), []);
  const onReady = (x: readonly TimelineEntry[]) =>
    x.filter((e) => /completion ready/.test(e.text)).map((e) => [e.task, e.event]);
  assert.deepEqual(onReady(t), [
    ['c', 'sleep'],
    ['a', 'wake'],
  ]);
  assert.deepEqual(onReady(t), onReady(full));
});

test('kvm counterexample: the default timeline is the protocol, with the sequence check that let the stale SPTE in', () => {
  const s = findScenario('kvm-mirror');
  const build = (k: Kernel) => s.build(k, resolveParams(s, {}));
  const mutants = ['kvm.retry-ignores-in-progress'];
  const x = explore(build, { strategy: 'pct', seed: 1, runs: 1000, mutants });
  assert.ok(x.failure !== null, 'pct seed 1 finds the mutant within 1,000 runs');
  let rec: TraceRecorder | null = null;
  replay(build, x.failure.token, { onKernel: (k) => (rec = new TraceRecorder(k.trace)) });
  assert.ok(rec !== null);
  const t = buildTimeline(rec);
  const full = buildTimeline(rec, 'full');
  assert.equal(t.at(-1)?.event, 'bug');
  assert.deepEqual(lockLines(t), []);
  assert.ok(lockLines(full).length > full.length / 3, 'the full timeline is lock-heavy');
  assert.ok(t.length < full.length / 2, `${t.length} protocol lines of ${full.length}`);
  // The bug's cause: a fault that read the sequence during an invalidation, committed anyway.
  const sawInProgress = t.find(
    (e) =>
      e.event === 'seq-check' &&
      /^kvm mm\d+: mmu_invalidate_retry\(\d+\) → no retry \(seq \d+, [1-9]\d* in progress\)$/.test(
        e.text,
      ),
  );
  assert.ok(sawInProgress !== undefined, renderTimeline(t).join('\n'));
  assert.ok(t.some((e) => e.event === 'seq-begin' && /mmu_invalidate_seq → \d+$/.test(e.text)));
  assert.ok(
    t.some((e) => e.event === 'seq-invalidate' && /^kvm mm\d+: invalidation starts/.test(e.text)),
  );
  assert.ok(t.some((e) => e.event === 'dev-map' && e.step >= sawInProgress.step));
});
