// `odpsim study designs`: the same workload on each ODP design, and what the table reports.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNumberList } from '../../src/cli/study.ts';
import { isErrno } from '../../src/index.ts';
import { STUDY_DESIGNS, STUDY_DISCARDS, studyDesign } from '../../src/study/designs.ts';

test('every design serves the same workload: the same invalidations, the list examining every MR', () => {
  const rows = STUDY_DESIGNS.map((d) => studyDesign(d, 50));
  for (const r of rows) {
    assert.equal(r.invalidationsDelivered, STUDY_DISCARDS, r.design);
    assert.ok(r.virtualTimeNs > 0 && r.lockHoldNs > 0, r.design);
  }
  const byDesign = new Map(rows.map((r) => [r.design, r]));
  const list = byDesign.get('list')!;
  assert.equal(list.entriesExamined, list.invalidationsDelivered + STUDY_DISCARDS * 50);
  const tree = byDesign.get('2014')!;
  assert.equal(
    tree.entriesExamined,
    tree.invalidationsDelivered + STUDY_DISCARDS * Math.ceil(Math.log2(51)),
  );
  // Per MR: 32 bytes of tree node (2014), an 88-byte interval notifier (2020), a list_head.
  assert.equal(byDesign.get('2014')!.trackingBytes, 120 + 32 * 50);
  assert.equal(byDesign.get('2020')!.trackingBytes, 104 + 88 * 50);
  assert.equal(list.trackingBytes, 100 + 16 * 50);
});

test('in virtual time the list pays for its walk: at 2,000 MRs it runs longer and holds its locks longer than the tree', () => {
  const tree = studyDesign(2014, 2000);
  const list = studyDesign('list', 2000);
  assert.ok(
    list.virtualTimeNs > tree.virtualTimeNs,
    `${list.virtualTimeNs} vs ${tree.virtualTimeNs}`,
  );
  assert.ok(list.lockHoldNs > 2 * tree.lockHoldNs, `${list.lockHoldNs} vs ${tree.lockHoldNs}`);
});

test('with one MR every WRITE and discard collide: the random run shows retries, each wasting its page', () => {
  const r = studyDesign(2020, 1);
  assert.ok(r.retries > 0);
  assert.equal(r.wastedPages, r.retries);
});

test('MR counts: numbers in a list, 1 to 100,000 each; anything else is refused', () => {
  assert.deepEqual(parseNumberList('mrs', '1,100,10000'), [1, 100, 10_000]);
  assert.deepEqual(parseNumberList('sizes', '4K,1M,512', true), [4096, 1 << 20, 512]);
  for (const bad of ['x', '', '3,', '-1', '4K'])
    assert.throws(() => parseNumberList('mrs', bad), /--mrs takes numbers/, bad);
  for (const bad of [0, 100_001, 1.5])
    assert.throws(
      () => studyDesign(2014, bad),
      (e: unknown) => isErrno(e, 'EINVAL'),
      String(bad),
    );
});
