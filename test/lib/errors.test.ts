import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkIndex, Errno, isErrno, isOdpsimError } from '../../src/index.ts';

test('Errno carries the code, number and a message naming the problem', () => {
  const e = new Errno('EINVAL', 'len must be page aligned');
  assert.equal(e.code, 'EINVAL');
  assert.equal(e.errno, 22);
  assert.match(e.message, /^EINVAL: len must be page aligned$/);
  assert.ok(isOdpsimError(e));
  assert.ok(isErrno(e, 'EINVAL'));
  assert.ok(!isErrno(e, 'EFAULT'));
  assert.ok(!isOdpsimError(new Error('x')));
});

test('checkIndex accepts safe non-negative integers and names the argument otherwise', () => {
  assert.equal(checkIndex(0, 'x'), 0);
  assert.equal(checkIndex(Number.MAX_SAFE_INTEGER, 'x'), Number.MAX_SAFE_INTEGER);
  for (const bad of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, '3', null, 2n]) {
    assert.throws(
      () => checkIndex(bad, 'start'),
      (e: unknown) => isErrno(e, 'EINVAL') && /start must be/.test((e as Error).message),
    );
  }
});
