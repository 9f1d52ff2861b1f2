// `odpsim study designs`: the ODP designs side by side on one workload, at several MR counts.
import {
  type DesignRow,
  STUDY_DESIGNS,
  STUDY_DISCARDS,
  STUDY_WRITES,
  studyDesign,
} from '../study/designs.ts';
import type { Io } from './io.ts';
import { EXIT, UsageError } from './options.ts';
import { formatMs, formatTable, num } from './report.ts';

/** Options of `odpsim study designs`. */
export interface StudyCommandOptions {
  /** MR counts, comma separated (default 1,100,10000). */
  readonly mrs: string;
  readonly json: boolean;
}

/** The MR counts of `--mrs`: a UsageError for anything but positive integers up to 100,000. */
export function parseMrCounts(list: string): number[] {
  const counts = list.split(',').map((x) => x.trim());
  const out: number[] = [];
  for (const c of counts) {
    const n = Number(c);
    if (!/^\d+$/.test(c) || !Number.isSafeInteger(n) || n < 1 || n > 100_000)
      throw new UsageError(
        `--mrs takes MR counts from 1 to 100000, comma separated, got ${JSON.stringify(c)}`,
      );
    out.push(n);
  }
  return out;
}

/** Runs the study; returns the exit status. */
export function studyCommand(io: Io, what: string, opts: StudyCommandOptions): number {
  if (what !== 'designs')
    throw new UsageError(`unknown study ${JSON.stringify(what)} (known: designs)`);
  const counts = parseMrCounts(opts.mrs);
  const t0 = io.now();
  const rows: DesignRow[] = [];
  for (const mrs of counts) for (const design of STUDY_DESIGNS) rows.push(studyDesign(design, mrs));
  const elapsedMs = io.now() - t0;
  if (opts.json) {
    io.out(JSON.stringify({ command: 'study', study: 'designs', rows, elapsedMs }, null, 2));
    return EXIT.ok;
  }
  io.out(
    [
      `odpsim study designs: ${STUDY_WRITES} RDMA WRITEs to random one-page ODP MRs while the server discards ${STUDY_DISCARDS} random pages; two runs per cell`,
      '',
      ...formatTable(
        [
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
        rows.map((r) => [
          label(r.design),
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
      ),
      '',
      'retries, wasted pages: from a second run under the random strategy (seed 1); in virtual time a fault takes no CPU time, so nothing collides.',
      'entries examined: the matches, plus a tree descent (log2 of the MRs) per invalidation, or every MR for the list.',
      'tracking bytes: the x86-64 sizes of the structures each design keeps per MR and per context.',
      `elapsed ${formatMs(elapsedMs)}`,
    ].join('\n'),
  );
  return EXIT.ok;
}

function label(design: string): string {
  if (design === '2014') return '2014 (per-context tree)';
  if (design === '2018') return '2018 (interim, 4.20-5.4)';
  if (design === '2020') return '2020 (interval notifier)';
  return '2014 with a list';
}
