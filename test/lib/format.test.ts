// Numbers as reports print them: thousands separators whatever the locale.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixed, formatNs, num } from '../../src/lib/format.ts';

test('num groups thousands; fixed keeps the decimals asked and groups the whole part', () => {
  assert.equal(num(1234567), '1,234,567');
  assert.equal(num(-1234), '-1,234');
  assert.equal(fixed(1170.66, 1), '1,170.7');
  assert.equal(fixed(655.36, 2), '655.36');
  assert.equal(fixed(-1234.5, 1), '-1,234.5');
  assert.equal(fixed(-0.04, 1), '0.0', 'no negative zero');
  assert.equal(fixed(999.96, 1), '1,000.0', 'rounding carries into the grouping');
  assert.equal(formatNs(655_360_000), '655 ms');
});
