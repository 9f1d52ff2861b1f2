/**
 * `odpsim study npf`: the measurements of Lesokhin et al., "Page Fault Support for Network
 * Controllers" (ASPLOS 2017), reproduced on the model, paper against model. P1, P2, P4 and P5
 * follow from the calibration of the cost table; P3, P6, P7 and P8 emerge from the model's
 * mechanics (per-fault paths, the RNR timer, pinning against RAM). npf-worlds.ts runs them.
 */
import { fixed, num } from '../lib/format.ts';
import {
  type Invalidations,
  measureFaults,
  measureInvalidations,
  measureMemory,
  measureRnrStall,
  type NpfFaults,
  type NpfMemory,
  quantile,
  type RnrStall,
} from './npf-worlds.ts';
import { formatMicros } from './rdma-bench.ts';
import type { StudyOptions, StudyResult } from './study.ts';

/** What the P7 and P8 machines are divided by by default (1 gives the paper's 8 GiB). */
export const DEFAULT_NPF_SCALE = 16;

/** The paper's figures, µs unless said otherwise. */
export const PAPER = {
  p1: 220,
  p2: 350,
  p3Ms: 220,
  p3Ratio: 600,
  p4One: 17,
  p4Many: 61,
  p5: { p50: 215, p95: 250, p99: 261, max: 464 },
  p6Ms: 655.36,
} as const;

/** The percentiles the fault-latency chart draws: 1 to 100. */
const PERCENTILES = Array.from({ length: 100 }, (_, i) => i + 1);

/** Everything the study measured. */
export interface NpfData {
  readonly faults: NpfFaults;
  readonly invalidations: Invalidations;
  readonly rnr: readonly RnrStall[];
  readonly memory: NpfMemory;
}

/** Runs P1–P8; `scale` divides the P7/P8 memory sizes (EINVAL unless 1, 2, 4, … 1024). */
export function studyNpf(opts: StudyOptions & { readonly scale?: number } = {}): StudyResult {
  const scale = opts.scale ?? DEFAULT_NPF_SCALE;
  const data: NpfData = {
    faults: measureFaults(opts),
    invalidations: measureInvalidations(opts),
    rnr: [measureRnrStall(opts, 7), measureRnrStall(opts, 0)],
    memory: measureMemory(opts, scale),
  };
  return {
    study: 'npf',
    title:
      'Lesokhin et al., "Page Fault Support for Network Controllers" (ASPLOS 2017), reproduced: paper against model',
    tables: [
      {
        title: 'Reproduction',
        header: ['claim', 'paper', 'model', 'holds'],
        rows: rows(data, scale),
      },
    ],
    notes: [
      "calibrated (P1, P2, P4, P5): the cost table holds the paper's breakdown (odpsim costs); the model adds up its parts along the fault and invalidation paths.",
      'emergent (P3, P6, P7, P8): nothing in the cost table states them; they come from one fault per request, the RNR timer and pinning against RAM.',
      'faults: RDMA WRITEs from an ODP buffer the CPU has written (minor device faults, requester side), each time minus a second WRITE of the same pages.',
      scale === 1
        ? "memory (P7, P8): the paper's 8 GiB machine, 3 GiB processes and 1 GiB buffers; CAP_IPC_LOCK, so only RAM limits pinning."
        : `memory (P7, P8): a machine of ${gib(data.memory.ramBytes)} (the paper's 8 GiB divided by ${scale}; --scale 1 for full size), processes and buffers divided alike; CAP_IPC_LOCK, so only RAM limits pinning.`,
    ],
    charts: [
      {
        id: 'fault-latency',
        title: 'Device page fault latency, one page per fault (sorted)',
        x: { label: 'fault (percentile)' },
        y: { label: 'latency (µs)' },
        series: [
          {
            name: 'model',
            // Every percentile of the faults measured (not every fault: a light picture).
            points: PERCENTILES.map(
              (p) => [p, quantile(data.faults.onePage, p / 100) / 1000] as const,
            ),
          },
          {
            name: 'paper (Table 4)',
            points: [
              [50, PAPER.p5.p50],
              [95, PAPER.p5.p95],
              [99, PAPER.p5.p99],
              [100, PAPER.p5.max],
            ],
          },
        ],
      },
    ],
    data,
  };
}

function gib(bytes: number): string {
  return bytes >= 1 << 30 ? `${bytes / 2 ** 30} GiB` : `${bytes / 2 ** 20} MiB`;
}

function within(model: number, paper: number, tolerance: number): boolean {
  return Math.abs(model - paper) <= paper * tolerance;
}

function yes(ok: boolean): string {
  return ok ? 'yes' : 'NO';
}

function us(ns: number): string {
  return `${formatMicros(ns)} µs`;
}

/** The reproduction table: one row per claim, the label and what is measured in one cell. */
function rows(d: NpfData, scale: number): string[][] {
  return claims(d, scale).map(([label, what, ...rest]) => [
    label === '' ? `    ${(what ?? '').trimStart()}` : `${label}  ${what}`,
    ...rest,
  ]);
}

function claims(d: NpfData, scale: number): string[][] {
  const f = d.faults;
  const inv = d.invalidations;
  const [forever, once] = d.rnr as [RnrStall, RnrStall];
  const m = d.memory;
  const q = f.quantiles;
  return [
    [
      'P1',
      'one-page minor device fault (mean)',
      `≈${PAPER.p1} µs`,
      us(f.oneMean),
      yes(within(f.oneMean / 1000, PAPER.p1, 0.1)),
    ],
    [
      'P2',
      'one fault covering 1024 pages (mean of 8)',
      `≈${PAPER.p2} µs`,
      us(f.manyOnce),
      yes(within(f.manyOnce / 1000, PAPER.p2, 0.1)),
    ],
    [
      'P3',
      '1024 pages, one page per fault',
      `> ${PAPER.p3Ms} ms, ≥ ${PAPER.p3Ratio}× P2`,
      `${fixed(f.manyOneByOne / 1e6, 1)} ms, ${num(Math.round(f.manyOneByOne / f.manyOnce))}× P2`,
      yes(f.manyOneByOne > PAPER.p3Ms * 1e6 && f.manyOneByOne >= PAPER.p3Ratio * f.manyOnce),
    ],
    [
      'P4',
      'invalidating 1 / 1024 mapped pages',
      `≈${PAPER.p4One} / ${PAPER.p4Many} µs`,
      `${us(inv.one)} / ${us(inv.many)}`,
      yes(within(inv.one / 1000, PAPER.p4One, 0.1) && within(inv.many / 1000, PAPER.p4Many, 0.1)),
    ],
    [
      '',
      '  more for 1024 pages the HCA never mapped',
      '≈0',
      us(inv.unmappedExtra),
      yes(inv.unmappedExtra < 1000),
    ],
    [
      'P5',
      `4 KiB fault spread, ${num(f.onePage.length)} faults (p50/p95/p99/max; p50, p95 checked)`,
      `${PAPER.p5.p50}/${PAPER.p5.p95}/${PAPER.p5.p99}/${PAPER.p5.max} µs`,
      `${[q.p50, q.p95, q.p99, q.max].map((x) => Math.round(x / 1000)).join('/')} µs`,
      // The tail of a thousand draws moves with the seed (p99 ±20%): the body is the claim.
      yes(within(q.p50 / 1000, PAPER.p5.p50, 0.1) && within(q.p95 / 1000, PAPER.p5.p95, 0.1)),
    ],
    [
      'P6',
      'responder fault, min_rnr_timer 0, rnr_retry 7',
      `≥ 1 stall of ${PAPER.p6Ms} ms, no error`,
      `${forever.rnrNaks} RNR NAK(s), ${fixed(forever.ns / 1e6, 2)} ms, ${forever.status}`,
      yes(forever.rnrNaks >= 1 && forever.ns >= PAPER.p6Ms * 1e6 && forever.status === 'SUCCESS'),
    ],
    [
      '',
      '  the same with rnr_retry 0',
      'the QP errors',
      once.status,
      yes(once.status !== 'SUCCESS'),
    ],
    [
      'P7',
      `4 processes × ${gib(m.processBytes)} on ${gib(m.ramBytes)}, pinned MRs`,
      'the 3rd registration fails',
      m.pinnedProcesses.join(', '),
      yes(
        m.pinnedProcesses[0] === 'ok' &&
          m.pinnedProcesses[1] === 'ok' &&
          m.pinnedProcesses[2] !== 'ok',
      ),
    ],
    [
      '',
      '  the same with ODP MRs',
      'all 4 run',
      m.odpProcesses.join(', '),
      yes(m.odpProcesses.every((r) => r === 'ok')),
    ],
    [
      'P8',
      `server: ${m.serverBuffers} pinned buffers of ${gib(m.bufferBytes)} (${scale > 1 ? 'scaled' : 'as'} 1 GiB)`,
      'fails to start',
      m.pinnedServer,
      yes(m.pinnedServer !== 'ok'),
    ],
    ['', '  the same with ODP buffers', 'runs', m.odpServer, yes(m.odpServer === 'ok')],
  ];
}
