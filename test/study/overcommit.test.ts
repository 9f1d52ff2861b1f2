// `odpsim study overcommit`: a registered buffer larger than RAM, pinned vs ODP.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isErrno } from '../../src/lib/errors.ts';
import { type OvercommitRun, studyOvercommit } from '../../src/study/overcommit.ts';

const MiB = 1024 * 1024;
// A 1 MiB machine (256 frames): the same behaviour as the default 8 MiB, faster.
const opts = { ramBytes: MiB, pressures: [0.5, 2] };

test('past RAM pinning fails while ODP keeps going through reclaim, swap and invalidations', () => {
  const r = studyOvercommit(opts);
  const runs = (r.data as { runs: OvercommitRun[] }).runs;
  const run = (p: number, kind: string) => runs.find((x) => x.pressure === p && x.kind === kind)!;
  // Within RAM both work; the ODP first pass pays the faults pinning paid at registration.
  const pin = run(0.5, 'pinned');
  const odp = run(0.5, 'odp');
  assert.equal(pin.registration, 'registered');
  assert.equal(odp.passes[0]!.pageFaults, 128);
  assert.equal(odp.passes[1]!.pageFaults, 0);
  assert.ok(odp.passes[0]!.mbps! < pin.passes[0]!.mbps! / 2);
  assert.equal(odp.passes[1]!.mbps, pin.passes[1]!.mbps);
  // Twice RAM: no pinning, but ODP completes every WRITE.
  assert.equal(run(2, 'pinned').registration, 'ENOMEM');
  assert.equal(run(2, 'pinned').passes.length, 0);
  const over = run(2, 'odp');
  for (const p of over.passes) {
    assert.equal(p.status, 'SUCCESS');
    assert.ok(p.pageInvalidations > 0 && p.swapOuts > 0);
  }
  // A sequential sweep over an LRU twice its size: every page is gone before it comes round.
  const steady = over.passes[1]!;
  assert.equal(steady.pageFaults, 512);
  assert.equal(steady.swapIns, 512);
  assert.ok(steady.mbps! < odp.passes[1]!.mbps! / 50);
  // Charts: pinned has a gap past RAM.
  const tput = r.charts.find((c) => c.id === 'throughput')!;
  assert.deepEqual(
    tput.series.find((s) => s.name === 'pinned')!.points.map(([, y]) => y === null),
    [false, true],
  );
  assert.equal(r.tables[0]!.rows[1]![3], 'ENOMEM');
  assert.deepEqual(JSON.parse(JSON.stringify(r.data)), r.data);
});

test('the same seed gives the same result', () => {
  const small = { ramBytes: MiB, pressures: [1.5], seed: 7 };
  assert.deepEqual(studyOvercommit(small), studyOvercommit(small));
});

test('bad pressures and RAM sizes are refused with EINVAL naming them', () => {
  const bad: [Parameters<typeof studyOvercommit>[0], RegExp][] = [
    [{ pressures: [] }, /pressures is empty/],
    [{ pressures: [0] }, /pressure 0 /],
    [{ pressures: [-1] }, /pressure -1 /],
    [{ pressures: [Number.NaN] }, /pressure NaN/],
    [{ pressures: [9] }, /pressure 9 /],
    [{ pressures: [1, 1] }, /given twice/],
    [{ ramBytes: 1000 }, /RAM/],
    [{ ramBytes: 4096 }, /RAM/],
  ];
  for (const [o, msg] of bad)
    assert.throws(
      () => studyOvercommit(o),
      (e: unknown) => isErrno(e, 'EINVAL') && msg.test(e.message),
      JSON.stringify(o),
    );
});
