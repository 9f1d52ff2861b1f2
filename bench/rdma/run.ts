/**
 * RDMA benchmark: device page faults handled per second (RDMA WRITEs each faulting a page of
 * an ODP MR in, against the same first WRITEs through a pinned MR), WRITEs per second at steady
 * state (pages already mapped) through an ODP MR against a pinned MR, and explore runs per
 * second on rdma-odp and mmap-io-unplug against dmirror-race. `npm run bench:rdma`. Options: `--reps 5`.
 *
 * One child process per case (`worker.ts`); each cell is the median of the repetitions, each
 * on a fresh world after a full GC. Tracing is off. Prints a Markdown table.
 */
import { arg, fmt, median, printTable, progressLog, workerRunner } from '../common.ts';
import { designTables } from './designs.ts';
import type { RdmaResult } from './worker.ts';

const reps = Number(arg('reps', '5'));
const child = workerRunner(new URL('./worker.ts', import.meta.url));
const log = progressLog();
const perSec = (ns: number) => (ns > 0 ? 1e9 / ns : 0);

log('device faults');
const faults = child<RdmaResult>(['faults', String(reps)]);
log('steady-state WRITEs');
const steady = child<RdmaResult>(['steady', String(reps)]);
log('explore runs');
const runs = child<RdmaResult>(['explore', String(reps)]);
log('explore runs of mmap-io-unplug');
const ioRuns = child<RdmaResult>(['explore-io', String(reps)]);

const rows = [
  {
    what: `RDMA WRITE faulting a page of an ODP MR in (${fmt(faults.n)} pages; RNR NAK, fault work, UMR, resume, retransmit)`,
    r: faults,
    unit: 'device faults/s',
    baseline: 'the same first WRITEs through a pinned MR',
  },
  {
    what: `RDMA WRITE at steady state through an ODP MR (${fmt(steady.n)} pages already mapped)`,
    r: steady,
    unit: 'WRITEs/s',
    baseline: 'the same WRITEs through a pinned MR',
  },
  {
    what: `explore rdma-odp at its defaults (pct, ${fmt(runs.n)} runs)`,
    r: runs,
    unit: 'runs/s',
    baseline: 'explore dmirror-race at its defaults',
  },
  {
    what: `explore mmap-io-unplug at its defaults (pct, ${fmt(ioRuns.n)} runs)`,
    r: ioRuns,
    unit: 'runs/s',
    baseline: 'explore dmirror-race at its defaults',
  },
];

console.log(`# RDMA benchmark (node ${process.version}, median of ${reps}, tracing off)\n`);
printTable(
  ['measure', 'rate', 'ns/op', 'baseline (same run)', 'baseline rate', 'ratio'],
  rows.map(({ what, r, unit, baseline }) => {
    const m = median(r.model);
    const b = median(r.bare);
    return [
      what,
      `${fmt(perSec(m))} ${unit}`,
      fmt(m),
      baseline,
      fmt(perSec(b)),
      `${(m / b).toFixed(1)}x`,
    ];
  }),
);
designTables(reps, log);
log('done');
