import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PAGE_SIZE } from '../../src/mm/constants.ts';
import { PageData } from '../../src/mm/page-data.ts';

function filled(len: number, byte: number): Uint8Array {
  return new Uint8Array(len).fill(byte);
}

function readAll(d: PageData): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE).fill(0xee);
  d.read(0, out, 0, PAGE_SIZE);
  return out;
}

test('unwritten bytes read as zero; small writes take chunks, large ones the flat page', () => {
  const d = new PageData();
  assert.equal(d.allocatedBytes, 0);
  assert.ok(readAll(d).every((b) => b === 0));
  d.write(600, filled(4, 7), 0, 4);
  assert.equal(d.allocatedBytes, 512);
  d.write(0, filled(PAGE_SIZE / 2, 1), 0, PAGE_SIZE / 2);
  assert.equal(d.allocatedBytes, PAGE_SIZE);
  const all = readAll(d);
  assert.equal(all[0], 1);
  assert.equal(all[PAGE_SIZE / 2 - 1], 1);
  assert.equal(all[PAGE_SIZE / 2], 0);
  d.clear();
  assert.equal(d.allocatedBytes, 0);
  assert.ok(readAll(d).every((b) => b === 0));
});

test('a cleared page gives its buffer to the next full write, zeroed; copies stay independent', () => {
  const old = new PageData();
  old.write(0, filled(PAGE_SIZE, 0xab), 0, PAGE_SIZE);
  old.clear();
  // The next pages to go flat may reuse the freed buffer: none may see its old bytes.
  const fresh = new PageData();
  fresh.write(100, filled(PAGE_SIZE / 2, 3), 0, PAGE_SIZE / 2);
  const got = readAll(fresh);
  assert.equal(got[99], 0);
  assert.equal(got[100], 3);
  assert.equal(got[100 + PAGE_SIZE / 2], 0);
  assert.equal(got[PAGE_SIZE - 1], 0);
  const copy = new PageData();
  copy.write(0, filled(PAGE_SIZE, 9), 0, PAGE_SIZE);
  copy.copyFrom(fresh);
  assert.deepEqual(readAll(copy), got);
  fresh.write(100, filled(1, 4), 0, 1);
  assert.equal(readAll(copy)[100], 3, 'a copy does not share the source buffer');
  fresh.clear();
  const again = new PageData();
  again.write(0, filled(PAGE_SIZE / 2, 5), 0, PAGE_SIZE / 2);
  assert.deepEqual(readAll(copy), got, 'reusing a freed buffer leaves copies alone');
  assert.equal(readAll(again)[PAGE_SIZE / 2 + 100], 0);
  again.copyFrom(again);
  assert.equal(readAll(again)[0], 5, 'a copy onto itself keeps the bytes');
});
