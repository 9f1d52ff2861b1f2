import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Completion,
  delay,
  isKernelBug,
  join,
  type Kernel,
  PctStrategy,
  preempt,
  RandomStrategy,
  ReplayDivergence,
  ReplayStrategy,
  TimedStrategy,
} from '../../src/index.ts';
import { runOnce } from './helpers.ts';

test('spawned tasks run to completion and join returns their results', () => {
  let got = 0;
  const r = runOnce((k) => {
    const child = k.spawn('child', function* () {
      yield* preempt();
      return 41;
    });
    k.spawn('parent', function* () {
      got = (yield* join(child)) + 1;
    });
  });
  assert.equal(r.ok, true);
  assert.equal(got, 42);
  assert.equal(r.kernel.tasks.length, 2);
  assert.match(r.log, /spawn id=0 name="child"/);
});

test('tasks spawned from tasks run too, and code between yields is atomic', () => {
  const order: string[] = [];
  const r = runOnce(
    (k) => {
      k.spawn('a', function* () {
        order.push('a1');
        k.spawn('b', function* () {
          order.push('b1');
        });
        order.push('a2');
        yield;
        order.push('a3');
      });
    },
    { strategy: new RandomStrategy(3) },
  );
  assert.equal(r.ok, true);
  assert.deepEqual(order.slice(0, 2), ['a1', 'a2']);
  assert.deepEqual([...order].sort(), ['a1', 'a2', 'a3', 'b1']);
});

test('an ordinary exception in a task fails the run as rule "exception"', () => {
  const r = runOnce((k) => {
    k.spawn('thrower', function* () {
      yield;
      throw new TypeError('boom');
    });
  });
  assert.equal(r.ok, false);
  assert.ok(isKernelBug(r.bug, 'exception'));
  assert.match(r.bug!.message, /in task thrower.*TypeError: boom/);
});

test('a bug caught by model code still ends the run at its step, and is the one reported, not a bug its clean-up raises', () => {
  let after = 0;
  const r = runOnce((k) => {
    k.spawn('swallower', function* () {
      try {
        k.bug('coherence', 'the first violation');
      } catch {
        // A clean-up path that swallows, then breaks another rule.
      }
      after++;
      yield* preempt();
      after++;
    });
    k.spawn('cleanup', function* () {
      try {
        yield* preempt();
        k.bug('coherence', 'never reached');
      } finally {
        after += 10;
      }
    });
  });
  assert.ok(isKernelBug(r.bug, 'coherence'));
  assert.match(r.bug!.message, /BUG coherence in task swallower: the first violation/);
  assert.equal(r.steps, 1);
  // The step that raised it ran to its yield, and nothing after.
  assert.equal(after, 1);
});

test('a clean-up path that raises a second bug while unwinding the first does not replace it', () => {
  const r = runOnce((k) => {
    k.spawn('fork', function* () {
      try {
        k.bug('coherence', 'device still maps a cleared entry');
      } catch (e) {
        k.bug('sleep-in-atomic', 'clean-up slept under a spinlock');
        throw e;
      }
      yield;
    });
  });
  assert.ok(isKernelBug(r.bug, 'coherence'), r.bug?.message);
});

test('the step limit fails the run by default and stops it quietly under "pass"', () => {
  const spin = (k: Kernel) => {
    k.spawn('spinner', function* () {
      for (;;) yield;
    });
  };
  const failed = runOnce(spin, { maxSteps: 50 });
  assert.ok(isKernelBug(failed.bug, 'step-limit'));
  assert.equal(failed.steps, 50);
  const passed = runOnce(spin, { maxSteps: 50, onStepLimit: 'pass' });
  assert.equal(passed.ok, true);
  assert.equal(passed.stoppedAtLimit, true);
});

test('the same strategy and seed give the same trace byte for byte; another seed differs', () => {
  const world = (k: Kernel) => {
    for (const name of ['x', 'y', 'z']) {
      k.spawn(name, function* () {
        for (let i = 0; i < 10; i++) yield;
      });
    }
  };
  const a = runOnce(world, { strategy: new PctStrategy(9, 3, 30) });
  const b = runOnce(world, { strategy: new PctStrategy(9, 3, 30) });
  const c = runOnce(world, { strategy: new RandomStrategy(10) });
  const d = runOnce(world, { strategy: new RandomStrategy(11) });
  assert.equal(a.log, b.log);
  assert.notEqual(c.log, d.log);
  assert.deepEqual(a.decisions, b.decisions);
});

test('replay follows recorded decisions and reports a divergence', () => {
  const world = (k: Kernel) => {
    for (const name of ['x', 'y']) {
      k.spawn(name, function* () {
        for (let i = 0; i < 3; i++) yield;
      });
    }
  };
  const orig = runOnce(world, { strategy: new RandomStrategy(5) });
  const again = runOnce(world, { strategy: new ReplayStrategy(orig.decisions) });
  assert.equal(again.log, orig.log);
  assert.throws(() => runOnce(world, { strategy: new ReplayStrategy([7]) }), ReplayDivergence);
  assert.throws(
    () => runOnce(world, { strategy: new ReplayStrategy([...orig.decisions, 0]) }),
    /finished after/,
  );
  assert.throws(
    () => runOnce(world, { strategy: new ReplayStrategy(orig.decisions.slice(0, 1)) }),
    /needs decision #2 but the recording ends after 1/,
  );
});

test('timed: the task with the earliest virtual time runs next, and the clock advances', () => {
  const order: string[] = [];
  const r = runOnce(
    (k) => {
      k.spawn('slow', function* () {
        yield* delay(300);
        order.push(`slow@${k.now}`);
      });
      k.spawn('fast', function* () {
        yield* delay(100);
        order.push(`fast@${k.now}`);
        yield* delay(100);
        order.push(`fast@${k.now}`);
      });
    },
    { strategy: new TimedStrategy() },
  );
  assert.equal(r.ok, true);
  assert.deepEqual(order, ['fast@100', 'fast@200', 'slow@300']);
  assert.equal(r.time, 300);
});

test('timed waits expire in virtual time when nothing wakes them', () => {
  let ok: boolean | undefined;
  let at = -1;
  const r = runOnce(
    (k) => {
      const c = new Completion('never');
      k.spawn('waiter', function* () {
        ok = yield* c.waitTimeout(1_000_000);
        at = k.now;
      });
    },
    { strategy: new TimedStrategy() },
  );
  assert.equal(r.ok, true);
  assert.equal(ok, false);
  assert.equal(at, 1_000_000);
});

test("a woken task catches up with its waker's time", () => {
  let seen = -1;
  runOnce(
    (k) => {
      const c = new Completion('c');
      k.spawn('waiter', function* () {
        yield* c.wait();
        seen = k.current!.time;
      });
      k.spawn('waker', function* () {
        yield* delay(5000);
        c.complete();
      });
    },
    { strategy: new TimedStrategy() },
  );
  assert.equal(seen, 5000);
});

test('switches and preemptions are counted', () => {
  const r = runOnce(
    (k) => {
      k.spawn('a', function* () {
        yield;
        yield;
      });
      k.spawn('b', function* () {
        yield;
      });
    },
    { strategy: new ReplayStrategy([0, 1, 1]) },
  );
  assert.equal(r.ok, true);
  // a, b (preempts a), b ends, a, a: switches a→b and b→a; only the first is a preemption.
  assert.equal(r.switches, 2);
  assert.equal(r.preemptions, 1);
});
