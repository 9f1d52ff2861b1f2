import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import {
  type Co,
  Completion,
  isErrno,
  isKernelBug,
  join,
  Kernel,
  Mutex,
  preempt,
  type Task,
} from '../../src/index.ts';
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
import { mmap } from '../../src/mm/mmap.ts';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
} from '../../src/mm/mmu-interval-notifier.ts';
import {
  MmuIntervalNotifier,
  type MmuIntervalNotifierOps,
} from '../../src/mm/mmu-interval-notifier-types.ts';
import {
  invalidateRangeEnd,
  invalidateRangeStart,
  invalidateRangeStartNonblock,
  rangeInit,
} from '../../src/mm/mmu-notifier.ts';
import { mmuNotifierRegister, mmuNotifierUnregister } from '../../src/mm/mmu-notifier-register.ts';
import { EAGAIN, MmuNotifier } from '../../src/mm/mmu-notifier-types.ts';

/** Callbacks that record what they saw and set the sequence, as drivers do. */
function recorder(log: string[]): MmuIntervalNotifierOps {
  return {
    *invalidate(sub, range, cur) {
      log.push(`${range.event}[${range.start},${range.end}) seq=${cur}`);
      mmuIntervalSetSeq(sub, cur);
      return true;
    },
  };
}

function world(
  body: (mm: Mm, machine: Machine, k: Kernel) => Co<void>,
  extra?: (mm: Mm, k: Kernel) => void,
) {
  const k = new Kernel();
  const machine = new Machine(k, { frames: 16 });
  installOracles(k, machine);
  const mm = machine.createMm();
  k.spawn('main', () => body(mm, machine, k));
  extra?.(mm, k);
  return k.run();
}

const itree = (mm: Mm) => mm.notifiers!.itree;

test('insert when idle: in the tree at once, with seq − 1 (odd, not the current)', () => {
  const r = world(function* (mm) {
    const sub = new MmuIntervalNotifier(recorder([]));
    yield* mmuIntervalNotifierInsert(sub, mm, 0x1000, 0x2000, sub.ops);
    assert.equal(itree(mm).seq, 2);
    assert.equal(sub.invalidateSeq, 1);
    assert.equal(sub.node.inTree, true);
    assert.equal(mm.notifiers!.hasItree, true);
    yield* mmuIntervalNotifierRemove(sub);
    assert.equal(sub.node.inTree, false);
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('insert while partially excluded: seq goes odd, the node goes in, readers wait for the end', () => {
  const r = world(function* (mm) {
    const seed = new MmuIntervalNotifier(recorder([]));
    yield* mmuIntervalNotifierInsert(seed, mm, 0x100000, 0x1000, seed.ops);
    const range = rangeInit(mm, 'CLEAR', 0x1000, 0x2000);
    yield* invalidateRangeStart(range); // hits nothing: active 1, seq even
    assert.equal(itree(mm).active, 1);
    assert.equal(itree(mm).seq, 2);
    const sub = new MmuIntervalNotifier(recorder([]));
    yield* mmuIntervalNotifierInsert(sub, mm, 0x1000, 0x1000, sub.ops);
    assert.equal(itree(mm).seq, 3);
    assert.equal(sub.invalidateSeq, 3);
    assert.equal(sub.node.inTree, true);
    yield* invalidateRangeEnd(range);
    assert.equal(itree(mm).seq, 4);
    assert.equal(itree(mm).active, 0);
    yield* mmuIntervalNotifierRemove(sub);
    yield* mmuIntervalNotifierRemove(seed);
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('insert while fully excluded: deferred, live at the last inv_end; remove of a deferred insert does not wait', () => {
  const log: string[] = [];
  const r = world(function* (mm) {
    const a = new MmuIntervalNotifier(recorder(log));
    yield* mmuIntervalNotifierInsert(a, mm, 0x1000, 0x1000, a.ops);
    const range = rangeInit(mm, 'CLEAR', 0x1000, 0x2000);
    yield* invalidateRangeStart(range); // hits a: seq odd
    assert.equal(itree(mm).seq, 3);
    const b = new MmuIntervalNotifier(recorder(log));
    yield* mmuIntervalNotifierInsert(b, mm, 0x1000, 0x1000, b.ops);
    assert.equal(b.node.inTree, false);
    assert.deepEqual(itree(mm).deferred, [b]);
    assert.equal(b.invalidateSeq, 3);
    const c = new MmuIntervalNotifier(recorder(log));
    yield* mmuIntervalNotifierInsert(c, mm, 0x5000, 0x1000, c.ops);
    yield* mmuIntervalNotifierRemove(c); // cancels the deferred insert, no wait
    assert.equal(c.mm, null);
    yield* invalidateRangeEnd(range);
    assert.equal(b.node.inTree, true);
    assert.equal(c.node.inTree, false);
    assert.deepEqual(itree(mm).deferred, []);
    assert.deepEqual(log, ['CLEAR[4096,8192) seq=3']);
    for (const s of [a, b]) yield* mmuIntervalNotifierRemove(s);
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('remove during an invalidation of its range waits for the end; readBegin waits only for its own range', () => {
  const order: string[] = [];
  const allIn = new Completion('all-in');
  let a: MmuIntervalNotifier;
  let b: MmuIntervalNotifier;
  const started = new Completion('started');
  const r = world(
    function* (mm) {
      a = new MmuIntervalNotifier(recorder([]));
      b = new MmuIntervalNotifier(recorder([]));
      yield* mmuIntervalNotifierInsert(a, mm, 0x1000, 0x1000, a.ops);
      yield* mmuIntervalNotifierInsert(b, mm, 0x9000, 0x1000, b.ops);
      const range = rangeInit(mm, 'CLEAR', 0x1000, 0x2000);
      yield* invalidateRangeStart(range);
      order.push('started');
      started.completeAll();
      // The default strategy runs remover, reader-a, reader-b in turn: when reader-b is
      // done the other two are asleep.
      yield* allIn.wait();
      order.push('ending');
      yield* invalidateRangeEnd(range);
      yield* mmuIntervalNotifierRemove(b);
      yield* mmput(mm);
    },
    (_mm, k) => {
      k.spawn('remover', function* () {
        yield* started.wait();
        yield* mmuIntervalNotifierRemove(a);
        order.push('removed');
      });
      k.spawn('reader-a', function* () {
        yield* started.wait();
        const s = yield* mmuIntervalReadBegin(a);
        order.push(`read-a ${s}`);
      });
      k.spawn('reader-b', function* () {
        yield* started.wait();
        const s = yield* mmuIntervalReadBegin(b);
        order.push(`read-b ${s}`);
        assert.equal(mmuIntervalReadRetry(b, s), false);
        allIn.complete();
      });
    },
  );
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(order.slice(0, 3), ['started', 'read-b 1', 'ending'], order.join(' | '));
  assert.deepEqual([...order.slice(3)].sort(), ['read-a 3', 'removed']);
});

test('readRetry: false with no invalidation since readBegin, true after one hit the range', () => {
  const r = world(function* (mm) {
    const sub = new MmuIntervalNotifier(recorder([]));
    yield* mmuIntervalNotifierInsert(sub, mm, 0x1000, 0x1000, sub.ops);
    const s1 = yield* mmuIntervalReadBegin(sub);
    assert.equal(mmuIntervalReadRetry(sub, s1), false);
    const miss = rangeInit(mm, 'CLEAR', 0x8000, 0x9000);
    yield* invalidateRangeStart(miss);
    yield* invalidateRangeEnd(miss);
    assert.equal(
      mmuIntervalReadRetry(sub, s1),
      false,
      'a non-intersecting invalidation never disturbs a reader',
    );
    const hit = rangeInit(mm, 'CLEAR', 0x1000, 0x2000);
    yield* invalidateRangeStart(hit);
    yield* invalidateRangeEnd(hit);
    assert.equal(mmuIntervalReadRetry(sub, s1), true);
    const s2 = yield* mmuIntervalReadBegin(sub);
    assert.equal(mmuIntervalReadRetry(sub, s2), false);
    yield* mmuIntervalNotifierRemove(sub);
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('a non-blockable start whose callback refuses unwinds (inv_end) and fails with EAGAIN', () => {
  const r = world(function* (mm) {
    const lock = new Mutex('driver.lock');
    const sub = new MmuIntervalNotifier({
      *invalidate(s, range, cur) {
        if (!range.blockable) {
          if (!lock.tryLock()) return false;
        } else yield* lock.lock();
        mmuIntervalSetSeq(s, cur);
        lock.unlock();
        return true;
      },
    });
    yield* mmuIntervalNotifierInsert(sub, mm, 0x1000, 0x1000, sub.ops);
    yield* lock.lock();
    const range = rangeInit(mm, 'UNMAP', 0x1000, 0x2000, { blockable: false });
    assert.equal(yield* invalidateRangeStartNonblock(range), EAGAIN);
    lock.unlock();
    assert.equal(itree(mm).active, 0);
    assert.equal(itree(mm).seq, 4, 'the failed start still ended its odd phase');
    assert.equal(
      yield* invalidateRangeStartNonblock(
        rangeInit(mm, 'UNMAP', 0x1000, 0x2000, { blockable: false }),
      ),
      0,
    );
    yield* invalidateRangeEnd(rangeInit(mm, 'UNMAP', 0x1000, 0x2000, { blockable: false }));
    yield* mmuIntervalNotifierRemove(sub);
    yield* mmput(mm);
  });
  // The second start/end pair above uses two range objects on purpose: the pairing oracle catches it.
  assert.ok(isKernelBug(r.bug, 'notifier-pairing'), r.bug?.message);
});

test('RELEASE at exit covers the whole address space; the subscription stays until removed', () => {
  const log: string[] = [];
  let sub: MmuIntervalNotifier;
  const r = world(function* (mm) {
    sub = new MmuIntervalNotifier(recorder(log));
    const a = yield* mmap(mm, {
      len: PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    yield* cpuWriteU32(mm, a, 1);
    yield* mmuIntervalNotifierInsert(sub, mm, a, PAGE_SIZE, sub.ops);
    yield* mmput(mm);
    assert.equal(sub.node.inTree, true);
    yield* mmuIntervalNotifierRemove(sub);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.match(log[0]!, /^RELEASE\[0,9007199254740991\) seq=3$/);
  assert.match(log[1]!, /^UNMAP\[0,140737488355328\) seq=5$/);
});

test('nested invalidations on one task keep the sequence odd until the outer end', () => {
  const r = world(function* (mm) {
    const sub = new MmuIntervalNotifier(recorder([]));
    yield* mmuIntervalNotifierInsert(sub, mm, 0x1000, 0x4000, sub.ops);
    const outer = rangeInit(mm, 'CLEAR', 0x1000, 0x3000);
    const inner = rangeInit(mm, 'CLEAR', 0x2000, 0x4000);
    yield* invalidateRangeStart(outer);
    yield* invalidateRangeStart(inner);
    assert.equal(itree(mm).active, 2);
    yield* invalidateRangeEnd(inner);
    assert.equal(itree(mm).seq & 1, 1);
    yield* invalidateRangeEnd(outer);
    assert.equal(itree(mm).seq, 4);
    yield* mmuIntervalNotifierRemove(sub);
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('many concurrent invalidations on several tasks: active balances, seq ends even', () => {
  for (let seed = 1; seed <= 30; seed++) {
    let final: { active: number; seq: number } | undefined;
    const invalidators: Task[] = [];
    const r = world(
      function* (mm) {
        const sub = new MmuIntervalNotifier(recorder([]));
        yield* mmuIntervalNotifierInsert(sub, mm, 0, 0x10000, sub.ops);
        for (let i = 0; i < 6; i++) yield* preempt();
        yield* mmuIntervalNotifierRemove(sub);
        // The world's reference goes last, once nothing invalidates the mm any more.
        for (const t of invalidators) yield* join(t);
        final = { active: itree(mm).active, seq: itree(mm).seq };
        yield* mmput(mm);
      },
      (mm, k) => {
        for (let t = 0; t < 3; t++) {
          invalidators.push(
            k.spawn(`inv${t}`, function* () {
              for (let i = 0; i < 3; i++) {
                const range = rangeInit(mm, 'CLEAR', t * 0x2000, t * 0x2000 + 0x3000);
                yield* invalidateRangeStart(range);
                yield* preempt();
                yield* invalidateRangeEnd(range);
              }
            }),
          );
        }
      },
    );
    assert.equal(r.ok, true, `seed ${seed}: ${r.bug?.message}`);
    assert.equal(final?.active, 0);
    assert.equal(final.seq % 2, 0);
  }
});

test('bad inserts: zero or overflowing length is EOVERFLOW, a dead mm EINVAL; a callback may not remove', () => {
  const r = world(function* (mm) {
    for (const [start, len, code] of [
      [0, 0, 'EOVERFLOW'],
      [Number.MAX_SAFE_INTEGER, 2, 'EOVERFLOW'],
      [-1, 10, 'EINVAL'],
    ] as const) {
      try {
        yield* mmuIntervalNotifierInsert(
          new MmuIntervalNotifier(recorder([])),
          mm,
          start,
          len,
          recorder([]),
        );
        assert.fail('expected an error');
      } catch (e) {
        assert.ok(isErrno(e, code), String(e));
      }
    }
    const selfRemover = new MmuIntervalNotifier({
      *invalidate(sub) {
        yield* mmuIntervalNotifierRemove(sub);
        return true;
      },
    });
    yield* mmuIntervalNotifierInsert(selfRemover, mm, 0, 0x1000, selfRemover.ops);
    const range = rangeInit(mm, 'CLEAR', 0, 0x1000);
    yield* invalidateRangeStart(range);
  });
  assert.ok(isKernelBug(r.bug, 'recursive-lock'), r.bug?.message);
  assert.match(r.bug!.message, /mmu_notifier_invalidate_range_start/);
});

test('invariant I1: the N1 mutant changing the tree while a callback walks it is reported', () => {
  const entered = new Completion('entered');
  const inserted = new Completion('inserted');
  const k = new Kernel({ mutants: ['itree.insert-idle-rule'], maxSteps: 10_000 });
  const machine = new Machine(k, { frames: 8 });
  const mm = machine.createMm();
  const slow = new MmuIntervalNotifier({
    *invalidate(sub, _range, cur) {
      mmuIntervalSetSeq(sub, cur);
      entered.complete();
      yield* inserted.wait();
      return true;
    },
  });
  k.spawn('invalidator', function* () {
    yield* mmuIntervalNotifierInsert(slow, mm, 0, 0x4000, slow.ops);
    const range = rangeInit(mm, 'CLEAR', 0, 0x4000);
    yield* invalidateRangeStart(range);
    yield* invalidateRangeEnd(range);
  });
  k.spawn('inserter', function* () {
    yield* entered.wait();
    const late = new MmuIntervalNotifier(recorder([]));
    yield* mmuIntervalNotifierInsert(late, mm, 0x1000, 0x1000, late.ops);
    inserted.complete();
  });
  const r = k.run();
  assert.ok(isKernelBug(r.bug, 'itree-invariant'), r.bug?.message);
  assert.match(r.bug!.message, /interval tree insert while 1 invalidation\(s\) walk it unlocked/);
});

test('classic and interval subscribers coexist: the interval callbacks run first, then the classic starts; ends reach the classic ones', () => {
  const log: string[] = [];
  const r = world(function* (mm) {
    const classic = new MmuNotifier({
      *invalidateRangeStart(_s, range) {
        log.push(`classic start ${range.event}`);
        return 0;
      },
      *invalidateRangeEnd(_s, range) {
        log.push(`classic end ${range.event}`);
      },
    });
    yield* mmuNotifierRegister(classic, mm);
    const sub = new MmuIntervalNotifier({
      *invalidate(s, range, cur) {
        log.push(`interval ${range.event}`);
        mmuIntervalSetSeq(s, cur);
        return true;
      },
    });
    yield* mmuIntervalNotifierInsert(sub, mm, 0, 0x10000, sub.ops);
    const range = rangeInit(mm, 'CLEAR', 0x1000, 0x2000);
    yield* invalidateRangeStart(range);
    yield* invalidateRangeEnd(range);
    yield* mmuIntervalNotifierRemove(sub);
    yield* mmuNotifierUnregister(classic, mm);
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(log, ['interval CLEAR', 'classic start CLEAR', 'classic end CLEAR']);
});
