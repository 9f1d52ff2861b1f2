import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kernel, Mutex, preempt, RandomStrategy, TraceRecorder } from '../../src/index.ts';

function world(k: Kernel): void {
  const m = new Mutex('m');
  for (const name of ['a', 'b']) {
    k.spawn(name, function* () {
      yield* m.lock();
      yield* preempt();
      m.unlock();
    });
  }
}

function record(seed: number): TraceRecorder {
  const k = new Kernel({ strategy: new RandomStrategy(seed) });
  const rec = new TraceRecorder(k.trace);
  world(k);
  k.run();
  return rec;
}

test('the text log has one stamped line per event with the kernel event types', () => {
  const rec = record(2);
  const log = rec.toText();
  const lines = log.split('\n');
  assert.equal(lines.length, rec.events.length);
  for (const type of ['spawn', 'switch', 'lock-acquire', 'lock-release', 'exit']) {
    assert.ok(
      rec.events.some((e) => e.type === type),
      type,
    );
  }
  assert.match(log, /^#0 0ns - spawn id=0 name="a"$/m);
  assert.match(log, /#\d+ 0ns [ab] lock-acquire lock="m" mode="write" trylock=false/);
  const contended = rec.events.find((e) => e.type === 'lock-contend');
  if (contended !== undefined)
    assert.ok(rec.events.some((e) => e.type === 'sleep' && e.task === contended.task));
});

test('chrome export: one named track per task, run slices and instants, valid JSON', () => {
  const rec = record(5);
  const json = JSON.parse(rec.toChromeTrace()) as {
    traceEvents: {
      name: string;
      ph: string;
      tid: number;
      args?: { name?: string };
    }[];
  };
  const names = json.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name');
  assert.deepEqual(
    names.map((e) => [e.tid, e.args?.name]),
    [
      [-1, 'kernel'],
      [0, 'a'],
      [1, 'b'],
    ],
  );
  const begins = json.traceEvents.filter((e) => e.ph === 'B');
  assert.ok(begins.length >= 2);
  assert.ok(begins.every((s) => s.name === 'run' && (s.tid === 0 || s.tid === 1)));
  assert.equal(json.traceEvents.filter((e) => e.ph === 'E').length, begins.length);
  assert.ok(json.traceEvents.some((e) => e.ph === 'i' && e.name === 'lock-acquire'));
});

test('unsubscribing stops delivery, and with no subscriber the bus is off', () => {
  const k = new Kernel();
  assert.equal(k.trace.on, false);
  const rec = new TraceRecorder(k.trace);
  assert.equal(k.trace.on, true);
  rec.detach();
  assert.equal(k.trace.on, false);
  world(k);
  k.run();
  assert.equal(rec.events.length, 0);
});
