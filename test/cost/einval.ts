// Shared by the cost tests: an EINVAL that says what was wrong.
import assert from 'node:assert/strict';
import { Errno } from '../../src/lib/errors.ts';

/** Asserts `f` throws an EINVAL Errno whose message contains every one of `words`. */
export function einval(f: () => unknown, ...words: string[]): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof Errno, `not an Errno: ${String(e)}`);
    assert.equal(e.code, 'EINVAL');
    for (const w of words)
      assert.ok(e.message.includes(w), `${JSON.stringify(w)} not in ${e.message}`);
    return true;
  });
}
