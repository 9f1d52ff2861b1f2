// Regression (fixed in src/mm/hmm.ts, found by api-bad-input.test.ts): hmmRange() sized its output arrays
// before checking the range, so a NaN, unsafe, negative or fractional-page range, or one too
// large to hold, threw a RangeError (Invalid array length) instead of an Errno.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  hmmRange,
  MmuIntervalNotifier,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalSetSeq,
  PAGE_SIZE,
  TASK_SIZE,
} from '../../src/index.ts';
import { errnoOf, inWorld } from './regression-harness.ts';

test('hmmRange() refuses a range it cannot size with an Errno naming hmm_range, not a RangeError', () => {
  const bug = inWorld(function* (mm) {
    const sub = new MmuIntervalNotifier({
      *invalidate(s, _range, cur) {
        mmuIntervalSetSeq(s, cur);
        return true;
      },
    });
    yield* mmuIntervalNotifierInsert(sub, mm, 0, TASK_SIZE, sub.ops);
    const seq = yield* mmuIntervalReadBegin(sub);
    const flags = { fault: false, write: false };
    for (const [start, end] of [
      [0, Number.NaN],
      [Number.NaN, PAGE_SIZE],
      [0, 2 ** 64],
      [-PAGE_SIZE, PAGE_SIZE],
      [PAGE_SIZE, 2 * PAGE_SIZE + 1],
      [0, 2 ** 52],
    ]) {
      const e = yield* errnoOf(function* () {
        return hmmRange(sub, seq, start!, end!, flags);
      });
      assert.match(e.message, /hmm_range/, `[${start}, ${end}): ${e.message}`);
    }
    yield* mmuIntervalNotifierRemove(sub);
  });
  assert.equal(bug, null, bug?.message);
});
