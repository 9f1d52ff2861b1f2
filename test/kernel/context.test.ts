import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Completion,
  isKernelBug,
  join,
  Mutex,
  mightSleep,
  nonBlockEnd,
  nonBlockStart,
  preemptDisable,
  preemptEnable,
  RwSemaphore,
  SpinLock,
  Srcu,
  sleep,
  WaitQueue,
} from '../../src/index.ts';
import { runOnce } from './helpers.ts';

test('every sleeping primitive under a spinlock is sleep-in-atomic, naming task and locks', () => {
  const sleepers: [string, (k: { spin: SpinLock }) => Generator<void, unknown, void>][] = [
    ['mutex', () => new Mutex('m').lock()],
    ['rwsem read', () => new RwSemaphore('r').downRead()],
    ['rwsem write', () => new RwSemaphore('r').downWrite()],
    ['completion', () => new Completion('c').wait()],
    ['wait_event', () => new WaitQueue('w').waitEvent(() => true)],
    ['srcu sync', () => new Srcu('s').synchronize()],
    ['sleep', () => sleep(10)],
  ];
  for (const [what, sleeper] of sleepers) {
    const r = runOnce((k) => {
      const spin = new SpinLock('mm.page_table_lock', 'ptl');
      k.spawn('faulter', function* () {
        yield* spin.lock();
        yield* sleeper({ spin });
        spin.unlock();
      });
    });
    assert.ok(isKernelBug(r.bug, 'sleep-in-atomic'), `${what}: ${r.bug?.message}`);
    assert.match(r.bug!.message, /in task faulter holding \[mm\.page_table_lock\]/, what);
  }
});

test('sleeping inside a non-blocking section or with preemption disabled is a bug; trylock is fine', () => {
  const nonblock = runOnce((k) => {
    const m = new Mutex('driver.lock');
    k.spawn('oom_reaper', function* () {
      nonBlockStart();
      if (m.tryLock()) m.unlock();
      yield* m.lock();
      nonBlockEnd();
    });
  });
  assert.ok(isKernelBug(nonblock.bug, 'sleep-in-atomic'));
  assert.match(nonblock.bug!.message, /mutex_lock\(driver\.lock\) inside a non-blocking section/);

  const disabled = runOnce((k) => {
    k.spawn('t', function* () {
      preemptDisable();
      mightSleep('kmalloc(GFP_KERNEL)');
      preemptEnable();
    });
  });
  assert.ok(isKernelBug(disabled.bug, 'sleep-in-atomic'));
});

test('lock-order inversion is reported at the first inversion, with the earlier chain', () => {
  const r = runOnce((k) => {
    const a = new Mutex('a');
    const b = new Mutex('b');
    k.spawn('first', function* () {
      yield* a.lock();
      yield* b.lock();
      b.unlock();
      a.unlock();
    });
    k.spawn('second', function* () {
      yield* join(k.tasks[0]!);
      yield* b.lock();
      yield* a.lock();
      a.unlock();
      b.unlock();
    });
  });
  assert.ok(isKernelBug(r.bug, 'lock-order'), r.bug?.message);
  assert.equal(r.preemptions, 0);
  assert.match(
    r.bug!.message,
    /second acquires a \(class a\) while holding b \(class b\), but earlier b after a \(in first\)/,
  );
});

test('lock classes: instances of one class in either order are not an inversion', () => {
  const r = runOnce((k) => {
    const x = new Mutex('mm1.mmap_lock', 'mmap_lock');
    const y = new Mutex('mm2.mmap_lock', 'mmap_lock');
    k.spawn('t', function* () {
      yield* x.lock();
      yield* y.lock();
      y.unlock();
      x.unlock();
      yield* y.lock();
      yield* x.lock();
      x.unlock();
      y.unlock();
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('a task ending while holding a lock, inside SRCU or non-blocking is reported', () => {
  const holding = runOnce((k) => {
    const m = new Mutex('m');
    k.spawn('leaker', function* () {
      yield* m.lock();
    });
  });
  assert.ok(isKernelBug(holding.bug, 'exit-holding-lock'));
  assert.match(holding.bug!.message, /leaker returned holding m/);

  const srcu = runOnce((k) => {
    const s = new Srcu('s');
    k.spawn('reader', function* () {
      s.readLock();
      yield;
    });
  });
  assert.ok(isKernelBug(srcu.bug, 'exit-in-srcu'));

  const nb = runOnce((k) => {
    k.spawn('t', function* () {
      nonBlockStart();
      yield;
    });
  });
  assert.ok(isKernelBug(nb.bug, 'exit-in-atomic'));
});

test('deadlock reports the wait-for chain of every blocked task', () => {
  const r = runOnce((k) => {
    const c = new Completion('never');
    const m = new Mutex('m');
    k.spawn('holder', function* () {
      yield* m.lock();
      yield* c.wait();
      m.unlock();
    });
    k.spawn('waiter', function* () {
      yield* m.lock();
      m.unlock();
    });
  });
  assert.ok(isKernelBug(r.bug, 'deadlock'));
  assert.match(
    r.bug!.message,
    /holder waits on completion never; waiter waits on mutex m held by holder/,
  );
});

test('misuse of context helpers is reported: unbalanced non_block_end and preempt_enable', () => {
  for (const bad of [nonBlockEnd, preemptEnable]) {
    const r = runOnce((k) => {
      k.spawn('t', function* () {
        bad();
      });
    });
    assert.ok(isKernelBug(r.bug, 'warn'), r.bug?.message);
  }
});

test('primitives used outside a running kernel throw EINVAL instead of crashing', () => {
  assert.throws(() => new Mutex('m').unlock(), /EINVAL: no simulated kernel is running/);
});
