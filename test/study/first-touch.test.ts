// `odpsim study first-touch`: the first RDMA WRITE into a fresh ODP buffer pays a responder
// fault that a pinned buffer or a synchronous prefetch does not; the second WRITE does not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isErrno } from '../../src/lib/errors.ts';
import {
  FIRST_TOUCH_CONFIGS,
  type FirstTouchCell,
  measureFirstTouch,
  studyFirstTouch,
} from '../../src/study/first-touch.ts';

const config = (id: string) => FIRST_TOUCH_CONFIGS.find((c) => c.id === id)!;
const cellOf = (cells: readonly FirstTouchCell[], size: number, id: string) =>
  cells.find((c) => c.size === size && c.config === id)!;

test('the first WRITE into a fresh ODP buffer faults every page and is much slower than pinned; the second is not', () => {
  const size = 64 * 1024;
  const pinned = measureFirstTouch(config('pinned'), size);
  const odp = measureFirstTouch(config('odp'), size);
  assert.equal(odp.firstStatus, 'SUCCESS');
  assert.equal(odp.pageFaults, size / 4096, 'one fault brings in the whole remaining WRITE');
  assert.equal(pinned.pageFaults, 0);
  // The responder fault (trigger, driver, UMR, resume: ~200 µs) dwarfs a 64 KiB transfer.
  assert.ok(odp.firstNs > pinned.firstNs + 150_000, `${odp.firstNs} vs ${pinned.firstNs}`);
  assert.equal(odp.steadyPageFaults, 0);
  assert.ok(Math.abs(odp.steadyNs - pinned.steadyNs) <= pinned.steadyNs * 0.05);
  // ODP registration maps nothing (and pins nothing): cheaper than pinning 16 pages.
  assert.ok(odp.setupNs < pinned.setupNs);
});

test('a synchronous prefetch removes the first-touch fault; an async one posted just before does not', () => {
  const size = 16 * 1024;
  const pinned = measureFirstTouch(config('pinned'), size);
  const sync = measureFirstTouch(config('odp-prefetch-sync'), size);
  assert.equal(sync.pageFaults, 0);
  assert.equal(sync.pagePrefetch, size / 4096);
  assert.ok(sync.prefetchNs > 0, 'ibv_advise_mr with FLUSH takes the time instead');
  assert.ok(Math.abs(sync.firstNs - pinned.firstNs) <= pinned.firstNs * 0.05);
  const async = measureFirstTouch(config('odp-prefetch-async'), size);
  assert.ok(async.pageFaults > 0);
  assert.ok(async.firstNs > 10 * pinned.firstNs);
});

test('a no-fault prefetch maps only what the CPU has: nothing of a fresh buffer, all of a written one', () => {
  const size = 16 * 1024;
  const fresh = measureFirstTouch(config('odp-prefetch-no-fault'), size);
  assert.equal(fresh.pageFaults, size / 4096);
  const written = measureFirstTouch(config('odp-cpu-written-no-fault'), size);
  assert.equal(written.pageFaults, 0);
  const writtenNoPrefetch = measureFirstTouch(config('odp-cpu-written'), size);
  assert.equal(writtenNoPrefetch.pageFaults, size / 4096);
});

test('a read-only prefetch of a fresh buffer makes the first WRITE slower than no prefetch (zero-page COW)', () => {
  const size = 16 * 1024;
  const read = measureFirstTouch(config('odp-prefetch-read'), size);
  const odp = measureFirstTouch(config('odp'), size);
  assert.equal(read.firstStatus, 'SUCCESS');
  assert.ok(read.firstNs > odp.firstNs, `${read.firstNs} vs ${odp.firstNs}`);
});

test('the study: tables, charts and data for each size and configuration; the same seed gives the same result', () => {
  const sizes = [4096, 32 * 1024];
  const a = studyFirstTouch({ sizes, seed: 3 });
  assert.equal(a.study, 'first-touch');
  assert.equal(a.tables[0]!.rows.length, sizes.length);
  assert.equal(a.tables[0]!.header.length, 1 + FIRST_TOUCH_CONFIGS.length);
  const chart = a.charts.find((c) => c.id === 'first-write')!;
  assert.equal(chart.series.length, FIRST_TOUCH_CONFIGS.length);
  assert.ok(chart.x.log && chart.y.log);
  for (const s of chart.series) assert.ok(s.points.every(([, y]) => y !== null && y > 0));
  const data = a.data as { cells: FirstTouchCell[] };
  assert.deepEqual(JSON.parse(JSON.stringify(a.data)), a.data, 'plain JSON');
  // First-write latency grows with size for every configuration.
  for (const c of FIRST_TOUCH_CONFIGS)
    assert.ok(cellOf(data.cells, 32 * 1024, c.id).firstNs > cellOf(data.cells, 4096, c.id).firstNs);
  assert.deepEqual(studyFirstTouch({ sizes, seed: 3 }), a);
  // The cost overrides reach the worlds: a slower PAGE_FAULT_RESUME moves the ODP cells only.
  const slow = studyFirstTouch({ sizes: [4096], costs: { 'mlx5.pf.resume': { base: 500_000 } } });
  const b = (slow.data as { cells: FirstTouchCell[] }).cells;
  const base = studyFirstTouch({ sizes: [4096] }).data as { cells: FirstTouchCell[] };
  assert.equal(cellOf(b, 4096, 'pinned').firstNs, cellOf(base.cells, 4096, 'pinned').firstNs);
  const moved = cellOf(b, 4096, 'odp').firstNs - cellOf(base.cells, 4096, 'odp').firstNs;
  assert.ok(moved > 400_000 && moved < 440_000, String(moved));
});

test('bad sizes are refused with EINVAL naming them', () => {
  const bad: [readonly number[], RegExp][] = [
    [[], /empty/],
    [[1000], /message size .*1000/],
    [[0], /message size/],
    [[32 * 1024 * 1024], /message size/],
    [[Number.NaN], /message size/],
    [[4096, 4096], /4096 given twice/],
  ];
  for (const [sizes, msg] of bad)
    assert.throws(
      () => studyFirstTouch({ sizes }),
      (e: unknown) => isErrno(e, 'EINVAL') && msg.test(e.message),
      String(sizes),
    );
});
