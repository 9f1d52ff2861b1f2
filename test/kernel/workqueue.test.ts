// Workqueues and lockdep_off.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isKernelBug, Mutex } from '../../src/index.ts';
import { lockdepOff, lockdepOn } from '../../src/kernel/context.ts';
import { Work, Workqueue } from '../../src/kernel/workqueue.ts';
import { runOnce } from './helpers.ts';

test('an ordered workqueue runs items one at a time in queue order; a pending item is not queued twice', () => {
  const log: string[] = [];
  const r = runOnce((k) => {
    const wq = new Workqueue('wq');
    const item = (name: string) =>
      new Work(name, function* () {
        log.push(`${name}>`);
        yield;
        yield;
        log.push(`<${name}`);
      });
    const a = item('a');
    k.spawn('queuer', function* () {
      assert.equal(wq.queueWork(a), true);
      assert.equal(wq.queueWork(a), false);
      wq.queueWork(item('b'));
      yield* wq.flush();
      log.push('flushed');
      assert.equal(wq.busy, 0);
      assert.equal(wq.queueWork(a), true);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(log, ['a>', '<a', 'b>', '<b', 'flushed', 'a>', '<a']);
});

test('workers exist only while there is work: an idle workqueue lets the world finish', () => {
  const r = runOnce((k) => {
    const wq = new Workqueue('wq', 2);
    k.spawn('q', function* () {
      for (let i = 0; i < 3; i++)
        wq.queueWork(
          new Work(`w${i}`, function* () {
            yield;
          }),
        );
      yield* wq.flush();
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(r.kernel.tasks.filter((t) => t.name === 'kworker/wq').length, 2);
});

test('lockdep_off: an inversion taken inside it is neither reported nor recorded', () => {
  const build = (off: boolean) =>
    runOnce((k) => {
      const a = new Mutex('a');
      const b = new Mutex('b');
      k.spawn('t', function* () {
        yield* a.lock();
        yield* b.lock();
        b.unlock();
        a.unlock();
        if (off) lockdepOff();
        yield* b.lock();
        yield* a.lock();
        a.unlock();
        b.unlock();
        if (off) lockdepOn();
      });
    });
  assert.ok(isKernelBug(build(false).bug, 'lock-order'));
  const quiet = build(true);
  assert.equal(quiet.ok, true, quiet.bug?.message);
});
