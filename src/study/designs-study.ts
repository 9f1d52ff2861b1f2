/**
 * `odpsim study designs` as a study: the ODP designs side by side at each MR count (designs.ts
 * runs them), as a table and as plots of virtual time and of entries examined against MRs.
 */
import { num } from '../lib/format.ts';
import type { ChartSeries } from './chart.ts';
import {
  type DesignRow,
  STUDY_DESIGNS,
  STUDY_DISCARDS,
  STUDY_WRITES,
  studyDesign,
} from './designs.ts';
import type { StudyOptions, StudyResult } from './study.ts';

/** The MR counts `odpsim study designs` runs by default. */
export const DEFAULT_MR_COUNTS: readonly number[] = [1, 10, 100, 1000, 10_000];

/** What each design is called in the table and the legends. */
export function designLabel(design: string): string {
  if (design === '2014') return '2014 (per-context tree)';
  if (design === '2018') return '2018 (interim, 4.20-5.4)';
  if (design === '2020') return '2020 (interval notifier)';
  return '2014 with a list';
}

/** Every design at every count of `mrs`; EINVAL for a count out of [1, 100,000]. */
export function studyDesigns(
  opts: StudyOptions & { readonly mrs?: readonly number[] } = {},
): StudyResult {
  const counts = opts.mrs ?? DEFAULT_MR_COUNTS;
  const rows: DesignRow[] = [];
  for (const mrs of counts) for (const d of STUDY_DESIGNS) rows.push(studyDesign(d, mrs, opts));
  const series = (f: (r: DesignRow) => number): ChartSeries[] =>
    STUDY_DESIGNS.map((d) => ({
      name: designLabel(String(d)),
      points: rows.filter((r) => r.design === String(d)).map((r) => [r.mrs, f(r)] as const),
    }));
  return {
    study: 'designs',
    title: `the ODP designs on one workload: ${STUDY_WRITES} RDMA WRITEs to random one-page ODP MRs while the server discards ${STUDY_DISCARDS} random pages; two runs per cell`,
    tables: [
      {
        title: 'Designs by MR count',
        header: [
          'design',
          'MRs',
          'device faults',
          'invalidations delivered',
          'entries examined',
          'retries',
          'wasted pages',
          'lock hold (µs)',
          'virtual time (ms)',
          'tracking bytes',
        ],
        rows: rows.map((r) => [
          designLabel(r.design),
          num(r.mrs),
          num(r.deviceFaults),
          num(r.invalidationsDelivered),
          num(r.entriesExamined),
          num(r.retries),
          num(r.wastedPages),
          num(Math.round(r.lockHoldNs / 1000)),
          (r.virtualTimeNs / 1e6).toFixed(2),
          num(r.trackingBytes),
        ]),
      },
    ],
    notes: [
      'virtual time: the workload under the cost model (odpsim costs), in virtual-time order.',
      "retries, wasted pages: from a second run under the random strategy (the study's seed); in virtual time a fault's CPU work is charged without a preemption point, so nothing collides.",
      'entries examined: the matches, plus a tree descent (log2 of the MRs) per invalidation, or every MR for the list.',
      'tracking bytes: the x86-64 sizes of the structures each design keeps per MR and per context.',
    ],
    charts: [
      {
        id: 'virtual-time',
        title: 'Virtual time of the workload',
        x: { label: 'ODP MRs', log: true },
        y: { label: 'virtual time (ms)' },
        series: series((r) => r.virtualTimeNs / 1e6),
      },
      {
        id: 'entries-examined',
        title: 'Tracking entries examined to deliver the invalidations',
        x: { label: 'ODP MRs', log: true },
        y: { label: 'entries examined', log: true },
        series: series((r) => r.entriesExamined),
      },
    ],
    data: { rows },
  };
}
