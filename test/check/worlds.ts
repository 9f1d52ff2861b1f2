// Small worlds with a known race and their correct versions, for the explorer tests.
import {
  type Kernel,
  KernelBug,
  Mutex,
  preempt,
  RwSemaphore,
  SpinLock,
  Srcu,
  WaitQueue,
} from '../../src/index.ts';

/** Two tasks increment a counter twice each; `locked` makes read-modify-write atomic. */
export function counterWorld(locked: boolean) {
  return (k: Kernel): void => {
    let counter = 0;
    const m = new Mutex('counter_lock');
    for (const name of ['inc0', 'inc1']) {
      k.spawn(name, function* () {
        for (let j = 0; j < 2; j++) {
          if (locked) yield* m.lock();
          const v = counter;
          yield* preempt();
          counter = v + 1;
          if (locked) m.unlock();
        }
      });
    }
    k.onQuiescence(() => {
      if (counter !== 4) throw new KernelBug('lost-update', `counter is ${counter}, expected 4`);
    });
  };
}

/** Two tasks take locks a and b; `ordered` makes both use the same order. */
export function abbaWorld(ordered: boolean, lockdep = true) {
  return (k: Kernel): void => {
    k.lockdep.enabled = lockdep;
    const a = new Mutex('a');
    const b = new Mutex('b');
    k.spawn('ab', function* () {
      yield* a.lock();
      yield* b.lock();
      b.unlock();
      a.unlock();
    });
    k.spawn('ba', function* () {
      const [first, second] = ordered ? [a, b] : [b, a];
      yield* first.lock();
      yield* second.lock();
      second.unlock();
      first.unlock();
    });
  };
}

/** A waiter and a waker; `handRolled` checks the flag and then sleeps without re-checking. */
export function wakeupWorld(handRolled: boolean) {
  return (k: Kernel): void => {
    let flag = false;
    const wq = new WaitQueue('event');
    k.spawn('waiter', function* () {
      if (handRolled) {
        if (!flag) {
          yield* preempt();
          yield* wq.sleepOnce();
        }
      } else {
        yield* wq.waitEvent(() => flag);
      }
    });
    k.spawn('waker', function* () {
      yield* preempt();
      flag = true;
      wq.wakeUpAll();
    });
  };
}

/** A reader, possibly nesting the read side, and a writer on one rwsem. */
export function nestedReadWorld(nested: boolean) {
  return (k: Kernel): void => {
    const sem = new RwSemaphore('mmap_lock');
    k.spawn('reader', function* () {
      yield* sem.downRead();
      yield* preempt();
      if (nested) {
        yield* sem.downRead();
        sem.upRead();
      }
      sem.upRead();
    });
    k.spawn('writer', function* () {
      yield* sem.downWrite();
      sem.upWrite();
    });
  };
}

/** A task that sleeps under a spinlock when `buggy`, else after dropping it. */
export function spinSleepWorld(buggy: boolean) {
  return (k: Kernel): void => {
    const ptl = new SpinLock('page_table_lock');
    const m = new Mutex('driver_mutex');
    k.spawn('invalidate', function* () {
      yield* ptl.lock();
      if (!buggy) ptl.unlock();
      yield* m.lock();
      m.unlock();
      if (buggy) ptl.unlock();
    });
    k.spawn('other', function* () {
      yield* m.lock();
      m.unlock();
    });
  };
}

/**
 * Readers enter and leave an SRCU domain while an updater unpublishes an object and
 * synchronizes; any reader that saw the object must be gone when synchronize returns.
 */
export function srcuWorld() {
  return (k: Kernel): void => {
    const srcu = new Srcu('notifier_srcu');
    let published = true;
    const inside = new Set<string>();
    for (const name of ['r0', 'r1']) {
      k.spawn(name, function* () {
        for (let i = 0; i < 2; i++) {
          const idx = srcu.readLock();
          if (published) inside.add(name);
          yield* preempt();
          inside.delete(name);
          srcu.readUnlock(idx);
        }
      });
    }
    k.spawn('updater', function* () {
      yield* preempt();
      published = false;
      yield* srcu.synchronize();
      if (inside.size > 0) {
        throw new KernelBug(
          'srcu-grace',
          `synchronize_srcu returned while ${[...inside].join(', ')} still use the object`,
        );
      }
    });
  };
}
