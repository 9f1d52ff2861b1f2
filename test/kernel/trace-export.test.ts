import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Completion,
  delay,
  Kernel,
  Mutex,
  PctStrategy,
  preempt,
  RandomStrategy,
  type Strategy,
  TimedStrategy,
  TraceRecorder,
} from '../../src/index.ts';
import {
  type ChromeEvent,
  type ChromeTrace,
  toChromeTrace,
} from '../../src/kernel/trace-export.ts';
import { findScenario, resolveParams } from '../../src/scenarios/index.ts';

/** Two tasks contending for a mutex; `ns` of virtual time spent in each critical section. */
function record(strategy: Strategy, ns: number): TraceRecorder {
  const k = new Kernel({ strategy });
  const rec = new TraceRecorder(k.trace);
  const m = new Mutex('m');
  const done = new Completion('done');
  k.spawn('a', function* () {
    yield* m.lock();
    if (ns > 0) yield* delay(ns);
    yield* preempt();
    m.unlock();
    done.complete();
  });
  k.spawn('b', function* () {
    yield* done.wait();
    yield* m.lock();
    if (ns > 0) yield* delay(ns);
    m.unlock();
  });
  const r = k.run();
  assert.equal(r.ok, true, r.bug?.message);
  return rec;
}

/** The kvm-mirror scenario, run once: hundreds of events over four tasks. */
function kvmWorld(strategy: Strategy): TraceRecorder {
  const k = new Kernel({ strategy, maxSteps: 1_000_000 });
  const rec = new TraceRecorder(k.trace);
  const s = findScenario('kvm-mirror');
  s.build(k, resolveParams(s, {}));
  const r = k.run();
  assert.equal(r.ok, true, r.bug?.message);
  return rec;
}

function parse(rec: TraceRecorder, clock?: 'steps' | 'virtual'): ChromeTrace {
  return JSON.parse(rec.toChromeTrace(clock === undefined ? {} : { clock })) as ChromeTrace;
}

const instants = (t: ChromeTrace) => t.traceEvents.filter((e) => e.ph === 'i');

/** Asserts per-thread ts never decreases and B/E slices are balanced and nested on each thread. */
function assertWellFormed(events: readonly ChromeEvent[]): void {
  const last = new Map<number, number>();
  const open = new Map<number, string[]>();
  for (const e of events) {
    if (e.ph === 'M') continue;
    const prev = last.get(e.tid) ?? Number.NEGATIVE_INFINITY;
    assert.ok(e.ts >= prev, `tid ${e.tid} goes back from ${prev} to ${e.ts} (${e.name})`);
    last.set(e.tid, e.ts);
    const stack = open.get(e.tid) ?? [];
    open.set(e.tid, stack);
    if (e.ph === 'B') stack.push(e.name);
    if (e.ph === 'E') assert.equal(stack.pop(), e.name, `tid ${e.tid}: E without its B`);
  }
  for (const [tid, stack] of open) assert.deepEqual(stack, [], `tid ${tid} left slices open`);
}

test('chrome export of a timed run uses virtual time in µs and says so', () => {
  const rec = record(new TimedStrategy(), 1500);
  const t = parse(rec);
  assert.equal(t.otherData.clock, 'virtual');
  assert.match(t.otherData.ts, /virtual µs/);
  assert.equal(t.displayTimeUnit, 'ns');
  const proc = t.traceEvents.find((e) => e.name === 'process_name');
  assert.match(String(proc?.args?.name), /virtual µs/);
  // Every instant sits at its event's virtual time, ns / 1000, and carries its step.
  const traced = rec.events.filter((e) => e.type !== 'spawn' && e.type !== 'switch');
  const shown = instants(t);
  assert.equal(shown.length, traced.length);
  const byStep = (e: ChromeEvent) => Number(e.args?.step);
  for (let i = 0; i < traced.length; i++) {
    const e = traced[i]!;
    const c = shown.find((x) => x.name === e.type && byStep(x) === e.step && x.tid === e.task);
    assert.ok(c !== undefined, `${e.type} at step ${e.step}`);
    assert.equal(c.ts, e.time / 1000);
  }
  // b's lock waits out a's 1.5 µs section and preempt; the last slice ends at 3 µs.
  assert.ok(shown.some((e) => e.ts === 1.5));
  assert.equal(t.traceEvents.at(-1)?.ph, 'E');
  assert.equal(t.traceEvents.at(-1)?.ts, 3);
  assertWellFormed(t.traceEvents);
});

test('chrome export of an untimed run uses the step index and says it is not time', () => {
  const rec = record(new RandomStrategy(5), 0);
  assert.ok(rec.events.every((e) => e.time === 0));
  const t = parse(rec);
  assert.equal(t.otherData.clock, 'steps');
  assert.match(t.otherData.ts, /step index/);
  assert.notEqual(t.displayTimeUnit, 'ns');
  const proc = t.traceEvents.find((e) => e.name === 'process_name');
  assert.match(String(proc?.args?.name), /step index/);
  const steps = rec.events.filter((e) => e.type !== 'spawn' && e.type !== 'switch');
  assert.deepEqual(
    instants(t).map((e) => [e.name, e.ts]),
    steps.map((e) => [e.type, e.step]),
  );
  assertWellFormed(t.traceEvents);
});

test('the clock can be forced either way', () => {
  const rec = record(new TimedStrategy(), 1500);
  const steps = parse(rec, 'steps');
  assert.equal(steps.otherData.clock, 'steps');
  const last = rec.events.at(-1)!;
  assert.equal(Math.max(...instants(steps).map((e) => e.ts)), last.step);
  assertWellFormed(steps.traceEvents);
  const untimed = record(new RandomStrategy(5), 0);
  assert.equal(parse(untimed, 'virtual').otherData.clock, 'virtual');
  assertWellFormed(parse(untimed, 'virtual').traceEvents);
});

test('chrome export of whole worlds: sorted by ts, no thread goes back, B/E balanced', () => {
  for (const strategy of [new TimedStrategy(), new PctStrategy(7, 3, 2000)]) {
    const rec = kvmWorld(strategy);
    for (const clock of [undefined, 'steps', 'virtual'] as const) {
      const { traceEvents } = parse(rec, clock);
      for (let i = 1; i < traceEvents.length; i++)
        assert.ok(traceEvents[i]!.ts >= traceEvents[i - 1]!.ts, `${strategy.kind} ${clock}`);
      assertWellFormed(traceEvents);
      const begins = traceEvents.filter((e) => e.ph === 'B').length;
      assert.equal(begins, rec.events.filter((e) => e.type === 'switch').length);
      assert.equal(traceEvents.filter((e) => e.ph === 'E').length, begins);
    }
  }
});

test('events at one virtual time keep their trace order', () => {
  const rec = kvmWorld(new TimedStrategy());
  const t = parse(rec);
  assert.equal(t.otherData.clock, 'virtual');
  const shown = instants(t);
  // Many events share a time; the stable sort leaves them in step order.
  assert.ok(new Set(shown.map((e) => e.ts)).size < shown.length / 4);
  const steps = shown.map((e) => Number(e.args?.step));
  for (let i = 1; i < steps.length; i++) assert.ok(steps[i]! >= steps[i - 1]!);
});

test('chrome export is deterministic: the same schedule gives the same bytes', () => {
  const a = kvmWorld(new PctStrategy(11, 3, 2000)).toChromeTrace();
  const b = kvmWorld(new PctStrategy(11, 3, 2000)).toChromeTrace();
  assert.equal(a, b);
  assert.notEqual(a, kvmWorld(new PctStrategy(12, 3, 2000)).toChromeTrace());
});

test('chrome export of an empty trace is valid', () => {
  const t = toChromeTrace([]);
  assert.equal(t.otherData.clock, 'steps');
  assert.deepEqual(
    t.traceEvents.map((e) => e.ph),
    ['M', 'M'],
  );
});
