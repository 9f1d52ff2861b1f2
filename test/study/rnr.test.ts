// `odpsim study rnr`: an RDMA WRITE hitting a responder fault, against the responder's
// min_rnr_timer and the requester's rnr_retry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RNR_TIMER_NS } from '../../src/drivers/rdma/core/ib-verbs.ts';
import { isErrno } from '../../src/lib/errors.ts';
import { measureRnr, type RnrCell, studyRnr } from '../../src/study/rnr.ts';

test('min_rnr_timer 0 stalls the WRITE for 655.36 ms; one retry is enough there', () => {
  const c = measureRnr(0, 7);
  assert.equal(c.status, 'SUCCESS');
  assert.equal(c.rnrNaks, 1);
  assert.ok(c.ns >= 655_360_000 && c.ns < 655_400_000, String(c.ns));
  const once = measureRnr(0, 1);
  assert.equal(once.status, 'SUCCESS');
  assert.equal(once.ns, c.ns);
});

test('rnr_retry 0 fails at the first RNR NAK where 7 completes', () => {
  const none = measureRnr(1, 0);
  assert.equal(none.status, 'RNR_RETRY_EXC_ERR');
  assert.equal(none.rnrNaks, 1);
  const forever = measureRnr(1, 7);
  assert.equal(forever.status, 'SUCCESS');
  // 10 µs between tries while a ~200 µs fault is handled: many NAKs, then success soon after
  // PAGE_FAULT_RESUME.
  assert.ok(forever.faultNs !== null && forever.faultNs > 100_000);
  assert.ok(forever.rnrNaks > 10, String(forever.rnrNaks));
  assert.ok(forever.ns >= forever.faultNs! && forever.ns < forever.faultNs! + 20_000);
});

test('a finite rnr_retry completes exactly when the WRITE needs no more retries than it allows', () => {
  // The retry-for-ever run says how many RNR NAKs the fault costs at each timer, each one
  // followed by a retry; a budget of r retries fails at the (r + 1)-th NAK.
  for (const timer of [3, 5, 7, 9]) {
    const needed = measureRnr(timer, 7).rnrNaks;
    for (const retry of [1, 2, 3]) {
      const c = measureRnr(timer, retry);
      assert.equal(c.status === 'SUCCESS', needed <= retry, `timer ${timer} retry ${retry}`);
    }
  }
});

test('the study: cells for each pair, a gap in the chart where a WRITE failed, and the same result twice', () => {
  const opts = { timers: [1, 14, 0], retries: [0, 3, 7] };
  const r = studyRnr(opts);
  assert.equal(r.study, 'rnr');
  const cells = (r.data as { cells: RnrCell[] }).cells;
  assert.equal(cells.length, 9);
  const chart = r.charts[0]!;
  assert.equal(chart.series.length, 3);
  // x in ms, in increasing order: 0.01, 1.28, 655.36.
  assert.deepEqual(
    chart.series[0]!.points.map(([x]) => x),
    [0.01, 1.28, 655.36],
  );
  assert.ok(
    chart.series[0]!.points.every(([, y]) => y === null),
    'rnr_retry 0 always fails',
  );
  const forever = chart.series[2]!.points;
  assert.ok(forever.every(([, y]) => y !== null));
  // Past the fault's length the latency is the timer itself.
  assert.ok(Math.abs(forever[1]![1]! - RNR_TIMER_NS[14]! / 1e6) < 0.01);
  assert.deepEqual(r.tables[0]!.rows[0]!.slice(0, 3), ['1', '0.01', 'RNR_RETRY_EXC_ERR']);
  assert.deepEqual(JSON.parse(JSON.stringify(r.data)), r.data);
  assert.deepEqual(studyRnr(opts), r);
});

test('bad timers and retry counts are refused with EINVAL naming them', () => {
  const bad: [Parameters<typeof studyRnr>[0], RegExp][] = [
    [{ timers: [] }, /min_rnr_timer values is empty/],
    [{ timers: [32] }, /min_rnr_timer .*32/],
    [{ timers: [-1] }, /min_rnr_timer/],
    [{ timers: [1.5] }, /min_rnr_timer/],
    [{ timers: [1, 1] }, /given twice/],
    [{ retries: [] }, /rnr_retry values is empty/],
    [{ retries: [8] }, /rnr_retry .*8/],
  ];
  for (const [opts, msg] of bad)
    assert.throws(
      () => studyRnr(opts),
      (e: unknown) => isErrno(e, 'EINVAL') && msg.test(e.message),
      JSON.stringify(opts),
    );
});
