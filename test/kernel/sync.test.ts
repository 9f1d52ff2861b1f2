import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Atomic,
  Completion,
  isKernelBug,
  type Kernel,
  Mutex,
  preempt,
  RandomStrategy,
  ReplayStrategy,
  RwSemaphore,
  SpinLock,
  Srcu,
  WaitQueue,
} from '../../src/index.ts';
import { runOnce } from './helpers.ts';

test('mutex: mutual exclusion under many random schedules', () => {
  for (let seed = 1; seed <= 200; seed++) {
    let inside = 0;
    let max = 0;
    const r = runOnce(
      (k) => {
        const m = new Mutex('m');
        for (let i = 0; i < 3; i++) {
          k.spawn(`t${i}`, function* () {
            for (let j = 0; j < 3; j++) {
              yield* m.lock();
              inside++;
              max = Math.max(max, inside);
              yield* preempt();
              inside--;
              m.unlock();
            }
          });
        }
      },
      { strategy: new RandomStrategy(seed) },
    );
    assert.equal(r.ok, true, r.bug?.message);
    assert.equal(max, 1);
  }
});

test('mutex: unlock by a non-owner, unlock when free and recursive locking are bugs', () => {
  const twoTasks = (bad: (m: Mutex) => Generator<void, void, void>) => (k: Kernel) => {
    const m = new Mutex('m');
    k.spawn('owner', function* () {
      yield* m.lock();
      yield* preempt();
      yield* preempt();
      m.unlock();
    });
    k.spawn('other', () => bad(m));
  };
  const notOwner = runOnce(
    twoTasks(function* (m) {
      yield;
      m.unlock();
    }),
    { strategy: new ReplayStrategy([0, 0, 1, 1], false) },
  );
  assert.ok(isKernelBug(notOwner.bug, 'unlock-not-owner'), notOwner.bug?.message);
  assert.match(notOwner.bug!.message, /other unlocks mutex m but it is held by owner/);

  const notHeld = runOnce((k) => {
    const m = new Mutex('m');
    k.spawn('t', function* () {
      m.unlock();
    });
  });
  assert.ok(isKernelBug(notHeld.bug, 'unlock-not-held'));

  const recursive = runOnce((k) => {
    const m = new Mutex('m');
    k.spawn('t', function* () {
      yield* m.lock();
      yield* m.lock();
    });
  });
  assert.ok(isKernelBug(recursive.bug, 'recursive-lock'), recursive.bug?.message);
  assert.match(recursive.bug!.message, /holding \[m\]/);
});

test('trylock never waits and reports whether it got the lock', () => {
  const got: boolean[] = [];
  const r = runOnce(
    (k) => {
      const s = new SpinLock('s');
      k.spawn('holder', function* () {
        yield* s.lock();
        yield* preempt();
        s.unlock();
      });
      k.spawn('trier', function* () {
        got.push(s.tryLock());
        yield* preempt();
        yield* preempt();
        const ok = s.tryLock();
        got.push(ok);
        if (ok) s.unlock();
      });
    },
    { strategy: new ReplayStrategy([0, 0, 1, 0, 1, 1], false) },
  );
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(got, [false, true]);
});

test('rwsem: readers share, writers exclude, and a waiting writer blocks new readers', () => {
  const log: string[] = [];
  const r = runOnce(
    (k) => {
      const sem = new RwSemaphore('sem');
      k.spawn('r1', function* () {
        yield* sem.downRead();
        log.push('r1 in');
        yield* preempt();
        yield* preempt();
        yield* preempt();
        log.push('r1 out');
        sem.upRead();
      });
      k.spawn('w', function* () {
        yield* preempt();
        yield* sem.downWrite();
        log.push('w in');
        sem.upWrite();
      });
      k.spawn('r2', function* () {
        yield* preempt();
        yield* preempt();
        yield* sem.downRead();
        log.push('r2 in');
        sem.upRead();
      });
    },
    { strategy: new ReplayStrategy([0, 0, 1, 1, 1, 2, 2, 2, 2], false) },
  );
  assert.equal(r.ok, true, r.bug?.message);
  // r2 arrived while w waited, so it queued behind w even though only readers held the lock.
  assert.deepEqual(log, ['r1 in', 'r1 out', 'w in', 'r2 in']);
});

test('rwsem: a nested read behind a queued writer deadlocks, as in Linux', () => {
  const r = runOnce(
    (k) => {
      const sem = new RwSemaphore('mmap_lock');
      k.spawn('reader', function* () {
        yield* sem.downRead();
        yield* preempt();
        yield* sem.downRead();
        sem.upRead();
        sem.upRead();
      });
      k.spawn('writer', function* () {
        yield* sem.downWrite();
        sem.upWrite();
      });
    },
    { strategy: new ReplayStrategy([0, 0, 1, 1], false) },
  );
  assert.ok(isKernelBug(r.bug, 'deadlock'), r.bug?.message);
  assert.match(r.bug!.message, /writer waits on rwsem mmap_lock held by reader/);
  assert.match(r.bug!.message, /reader waits on rwsem mmap_lock held by reader/);
});

test('rwsem: downgrade lets queued readers in; misuse is reported', () => {
  const log: string[] = [];
  const r = runOnce(
    (k) => {
      const sem = new RwSemaphore('sem');
      k.spawn('w', function* () {
        yield* sem.downWrite();
        yield* preempt();
        sem.downgradeWrite();
        log.push('downgraded');
        yield* preempt();
        log.push('w still reading');
        sem.upRead();
      });
      k.spawn('r', function* () {
        yield* sem.downRead();
        log.push('r in');
        sem.upRead();
      });
    },
    { strategy: new ReplayStrategy([0, 0, 1, 1, 1], false) },
  );
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(log, ['downgraded', 'r in', 'w still reading']);
  const bad = runOnce((k) => {
    const sem = new RwSemaphore('sem');
    k.spawn('t', function* () {
      sem.upWrite();
    });
  });
  assert.ok(isKernelBug(bad.bug, 'unlock-not-held'));
  assert.equal(new RwSemaphore('x').downReadTrylock === undefined, false);
});

test('completion: complete lets one waiter through, complete_all all, reinit resets', () => {
  const passed: string[] = [];
  const r = runOnce((k) => {
    const c = new Completion('c');
    const passedOne = new Completion('passedOne');
    for (const n of ['a', 'b']) {
      k.spawn(n, function* () {
        yield* c.wait();
        passed.push(n);
        passedOne.complete();
      });
    }
    k.spawn('completer', function* () {
      yield* preempt();
      c.complete();
      yield* passedOne.wait();
      yield* preempt();
      assert.equal(passed.length, 1);
      c.completeAll();
      yield* passedOne.wait();
      assert.equal(c.isDone(), true);
      c.reinit();
      assert.equal(c.tryWait(), false);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual([...passed].sort(), ['a', 'b']);
});

test('completion: use after free is reported, not crashed on', () => {
  const r = runOnce((k) => {
    const c = new Completion('done');
    k.spawn('t', function* () {
      c.free();
      c.complete();
    });
  });
  assert.ok(isKernelBug(r.bug, 'use-after-free'));
  assert.match(r.bug!.message, /complete on completion done after it was freed/);
});

test('wait queue: wait_event re-checks its predicate; wake_up_all wakes everyone', () => {
  let flag = false;
  const woke: string[] = [];
  const r = runOnce(
    (k) => {
      const wq = new WaitQueue('wq');
      for (const n of ['a', 'b']) {
        k.spawn(n, function* () {
          yield* wq.waitEvent(() => flag);
          woke.push(n);
        });
      }
      k.spawn('setter', function* () {
        wq.wakeUpAll(); // spurious: the predicate is still false
        yield* preempt();
        flag = true;
        wq.wakeUpAll();
      });
    },
    { strategy: new RandomStrategy(4) },
  );
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual([...woke].sort(), ['a', 'b']);
});

test('SRCU: synchronize waits for earlier readers only; call_srcu runs after them', () => {
  const log: string[] = [];
  const r = runOnce(
    (k) => {
      const srcu = new Srcu('srcu');
      k.spawn('early', function* () {
        const idx = srcu.readLock();
        yield* preempt();
        yield* preempt();
        log.push('early out');
        srcu.readUnlock(idx);
      });
      k.spawn('sync', function* () {
        yield* preempt();
        srcu.callSrcu(() => log.push('callback'));
        yield* srcu.synchronize();
        log.push('synced');
        yield* srcu.barrier();
      });
      k.spawn('late', function* () {
        yield* preempt();
        yield* preempt();
        const idx = srcu.readLock();
        yield* preempt();
        yield* preempt();
        yield* preempt();
        log.push('late out');
        srcu.readUnlock(idx);
      });
    },
    { strategy: new ReplayStrategy([0, 1, 1, 1, 2, 2, 2, 0, 0, 1], false) },
  );
  assert.equal(r.ok, true, r.bug?.message);
  assert.ok(log.indexOf('synced') > log.indexOf('early out'));
  assert.ok(log.indexOf('synced') < log.indexOf('late out'), log.join());
  assert.ok(log.indexOf('callback') > log.indexOf('early out'));
});

test('SRCU: unlocking a cookie that is not open is reported', () => {
  const r = runOnce((k) => {
    const srcu = new Srcu('s');
    k.spawn('t', function* () {
      srcu.readUnlock(99);
    });
  });
  assert.ok(isKernelBug(r.bug, 'unlock-not-held'));
});

test('atomics: each operation is one step, so cmpxchg loops never lose updates', () => {
  for (let seed = 1; seed <= 100; seed++) {
    const a = new Atomic('a');
    const r = runOnce(
      (k) => {
        for (let i = 0; i < 3; i++) {
          k.spawn(`t${i}`, function* () {
            for (let j = 0; j < 4; j++) {
              for (;;) {
                const v = yield* a.read();
                if ((yield* a.cmpxchg(v, v + 1)) === v) break;
              }
            }
            yield* a.add(10);
            yield* a.dec();
          });
        }
      },
      { strategy: new RandomStrategy(seed) },
    );
    assert.equal(r.ok, true, r.bug?.message);
    assert.equal(a.peek(), 12 + 30 - 3);
  }
});

test('atomics: xchg returns the old value; inc and set are single steps', () => {
  const a = new Atomic('a', 5);
  const r = runOnce((k) => {
    k.spawn('t', function* () {
      assert.equal(yield* a.xchg(9), 5);
      assert.equal(yield* a.inc(), 10);
      yield* a.set(3);
      assert.equal(yield* a.cmpxchg(4, 0), 3);
    });
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(r.steps, 5);
  assert.equal(a.peek(), 3);
});

test('double unlock of a mutex, a spinlock and an rwsem reader is reported as unlock-not-held', () => {
  const cases: [string, (k: Kernel) => void][] = [
    [
      'mutex',
      (k) => {
        const m = new Mutex('m');
        k.spawn('t', function* () {
          yield* m.lock();
          m.unlock();
          m.unlock();
        });
      },
    ],
    [
      'spinlock',
      (k) => {
        const s = new SpinLock('s');
        k.spawn('t', function* () {
          yield* s.lock();
          s.unlock();
          s.unlock();
        });
      },
    ],
    [
      'rwsem',
      (k) => {
        const r = new RwSemaphore('r');
        k.spawn('t', function* () {
          yield* r.downRead();
          r.upRead();
          r.upRead();
        });
      },
    ],
  ];
  for (const [what, build] of cases) {
    const r = runOnce(build);
    assert.ok(isKernelBug(r.bug, 'unlock-not-held'), `${what}: ${r.bug?.message}`);
  }
});
