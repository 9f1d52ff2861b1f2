/**
 * The per-design part of `npm run bench:rdma`: for each ODP design (2014, interim, today's, and
 * 2014 dispatching through a list) at 1, 100 and 10,000 MRs, device faults per second against
 * pinned MRs and invalidations per second against the same discards with no MR; implicit-ODP
 * child creation per second against faults into an existing child; and the bytes of tracking
 * state per registered GiB, the model's heap next to Linux's structures.
 */
import type { OdpDesign } from '../../src/drivers/rdma/core/device.ts';
import { PAGE_SIZE } from '../../src/mm/constants.ts';
import { TRACKING_BYTES } from '../../src/study/designs.ts';
import { fmt, median, printTable, workerRunner } from '../common.ts';

/** Pages of the server's buffer in the `design` case, and the WRITEs (one per fifth page). */
export const BUFFER_PAGES = 10_000;
export const TOUCHED = 2_000;
/** Implicit-ODP children created per repetition. */
export const CHILDREN = 1024;
/** Pages in a GiB. */
export const GIB_PAGES = 2 ** 30 / PAGE_SIZE;

export type BenchDesign = OdpDesign | 'list';

/** A measure in ns per operation, one per repetition, and its same-run baseline. */
export interface Pair {
  model: number[];
  bare: number[];
}

export interface DesignResult {
  faults: Pair;
  invalidations: Pair;
}

const DESIGNS: readonly BenchDesign[] = [2014, 2018, 2020, 'list'];
const MR_COUNTS = [1, 100, 10_000];
const LABEL: Record<string, string> = {
  '2014': '2014 (per-context tree)',
  '2018': 'interim (4.20-5.4)',
  '2020': 'today (interval notifier)',
  list: '2014 with a list',
};
/**
 * Linux's per-page arrays of an ODP umem: page_list (2014, interim) or pfn_list (today), and
 * dma_list, 8 bytes each per page. An implicit child is a 1 GiB umem with both.
 */
const LINUX_BYTES_PER_PAGE = 16;

const perSec = (ns: number) => (ns > 0 ? 1e9 / ns : 0);
const ratio = (p: Pair) => `${(median(p.model) / median(p.bare)).toFixed(1)}x`;

/** Runs the per-design cases in child processes and prints their tables. */
export function designTables(reps: number, log: (s: string) => void): void {
  const child = workerRunner(new URL('./design-worker.ts', import.meta.url));
  const rows: string[][] = [];
  const tracking: string[][] = [];
  for (const d of DESIGNS) {
    for (const mrs of MR_COUNTS) {
      log(`design ${d} at ${fmt(mrs)} MRs`);
      const r = child<DesignResult>(['design', String(reps), String(d), String(mrs)]);
      rows.push([
        LABEL[String(d)]!,
        fmt(mrs),
        fmt(perSec(median(r.faults.model))),
        fmt(perSec(median(r.faults.bare))),
        ratio(r.faults),
        fmt(perSec(median(r.invalidations.model))),
        fmt(perSec(median(r.invalidations.bare))),
        ratio(r.invalidations),
      ]);
      const t = child<{ perGib: number[]; pages: number }>([
        'tracking',
        String(reps),
        String(d),
        String(mrs),
      ]);
      const b = TRACKING_BYTES[String(d)]!;
      const linux =
        ((b.fixed + b.perMr * mrs + LINUX_BYTES_PER_PAGE * t.pages) * GIB_PAGES) / t.pages;
      tracking.push([LABEL[String(d)]!, fmt(mrs), fmt(median(t.perGib)), fmt(linux)]);
    }
  }
  log('implicit children');
  const imp = child<{ writes: Pair; heapPerChild: number[] }>(['implicit', String(reps)]);

  console.log(`\n## Per design (${fmt(TOUCHED)} first WRITEs, then as many discards)\n`);
  printTable(
    [
      'design',
      'MRs',
      'device faults/s',
      'pinned WRITEs/s',
      'ratio',
      'invalidations/s',
      'discards/s, no MR',
      'ratio',
    ],
    rows,
  );
  console.log(`\n## Implicit ODP (today's design, ${CHILDREN} children)\n`);
  printTable(
    ['measure', 'rate', 'baseline (same run)', 'baseline rate', 'ratio', 'heap per child'],
    [
      [
        'WRITE whose fault creates a child (one per GiB)',
        `${fmt(perSec(median(imp.writes.model)))} children/s`,
        'WRITE faulting into an existing child',
        fmt(perSec(median(imp.writes.bare))),
        ratio(imp.writes),
        `${fmt(median(imp.heapPerChild))} B (Linux ${fmt(LINUX_BYTES_PER_PAGE * GIB_PAGES + TRACKING_BYTES['2020']!.perMr)} B)`,
      ],
    ],
  );
  console.log('\n## Tracking state per registered GiB (no page touched)\n');
  printTable(['design', 'MRs', 'model heap (B/GiB)', 'Linux structures (B/GiB)'], tracking);
}
