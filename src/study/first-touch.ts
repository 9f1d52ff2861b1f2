/**
 * `odpsim study first-touch`: what the first RDMA WRITE into a fresh buffer costs when the
 * remote MR is on demand (ODP) instead of pinned, by message size, and what ibv_advise_mr()
 * prefetch before it changes; then the second WRITE to the same buffer (the steady state).
 *
 * The ODP MR is the responder's: a server exposes a buffer it has not touched yet, a client
 * writes into it. The client's source buffer is pinned and already written, so only the
 * server's side can fault. A responder fault stops the server's QP side: the WRITE's packets
 * are answered with RNR NAKs until the driver resumes it, and the client retries after the
 * server's min_rnr_timer. Each cell is its own world (same seed), one WRITE measured from
 * ibv_post_send() to its completion in virtual time.
 */
import { Errno } from '../lib/errors.ts';
import { PAGE_SIZE } from '../mm/constants.ts';
import type { ChartSpec } from './chart.ts';
import {
  type BenchBuffer,
  checkBytes,
  formatMicros,
  type MrKind,
  type PrefetchRequest,
  runBench,
} from './rdma-bench.ts';
import type { StudyOptions, StudyResult, StudyTable } from './study.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The default message sizes: powers of 4 from 4 KiB to 4 MiB. */
export const FIRST_TOUCH_SIZES: readonly number[] = [4, 16, 64, 256, 1024, 4096].map(
  (k) => k * KiB,
);
/** The largest size a cell may take (the client's source buffer lives in 64 MiB). */
export const FIRST_TOUCH_MAX_SIZE = 16 * MiB;
/** min_rnr_timer of the server's QP: encoding 1, 10 µs. */
export const FIRST_TOUCH_RNR_TIMER = 1;

/** How the server's buffer is registered and prepared before the first WRITE. */
export interface FirstTouchConfig {
  readonly id: string;
  readonly label: string;
  readonly kind: MrKind;
  /** The server's CPU writes the buffer after registering it (its pages exist, the HCA has none). */
  readonly cpuWritten: boolean;
  /** ibv_advise_mr() over the whole buffer after that, or none. */
  readonly prefetch: PrefetchRequest | null;
}

/** The configurations compared, in table order. */
export const FIRST_TOUCH_CONFIGS: readonly FirstTouchConfig[] = [
  { id: 'pinned', label: 'pinned', kind: 'pinned', cpuWritten: false, prefetch: null },
  { id: 'odp', label: 'ODP', kind: 'odp', cpuWritten: false, prefetch: null },
  {
    id: 'odp-prefetch-sync',
    label: 'ODP+prefetch',
    kind: 'odp',
    cpuWritten: false,
    prefetch: { advice: 'write', sync: true },
  },
  {
    id: 'odp-prefetch-async',
    label: 'ODP+async prefetch',
    kind: 'odp',
    cpuWritten: false,
    prefetch: { advice: 'write', sync: false },
  },
  {
    id: 'odp-prefetch-no-fault',
    label: 'ODP+no-fault prefetch',
    kind: 'odp',
    cpuWritten: false,
    prefetch: { advice: 'no-fault', sync: true },
  },
  {
    id: 'odp-prefetch-read',
    label: 'ODP+read prefetch',
    kind: 'odp',
    cpuWritten: false,
    prefetch: { advice: 'read', sync: true },
  },
  {
    id: 'odp-cpu-written',
    label: 'ODP, CPU-written',
    kind: 'odp',
    cpuWritten: true,
    prefetch: null,
  },
  {
    id: 'odp-cpu-written-no-fault',
    label: 'ODP, CPU-written+no-fault prefetch',
    kind: 'odp',
    cpuWritten: true,
    prefetch: { advice: 'no-fault', sync: true },
  },
];

/** One cell: one configuration at one size. */
export interface FirstTouchCell {
  readonly config: string;
  readonly size: number;
  /** The first and the second WRITE, post to completion, ns, and their statuses. */
  readonly firstNs: number;
  readonly steadyNs: number;
  readonly firstStatus: string;
  readonly steadyStatus: string;
  /** ibv_reg_mr(), the CPU's writes and the ibv_advise_mr() call before the first WRITE, ns. */
  readonly setupNs: number;
  /** The ibv_advise_mr() call alone, ns (0 without prefetch). */
  readonly prefetchNs: number;
  /** The server HCA's page_faults during the first WRITE, and during the second. */
  readonly pageFaults: number;
  readonly steadyPageFaults: number;
  /** The server HCA's page_prefetch by the end of the first WRITE (an async prefetch may finish during it). */
  readonly pagePrefetch: number;
}

/** Measures one cell in a world of its own. */
export function measureFirstTouch(
  config: FirstTouchConfig,
  size: number,
  opts: StudyOptions = {},
): FirstTouchCell {
  checkSize(size);
  return runBench({ ...opts, minRnrTimer: FIRST_TOUCH_RNR_TIMER, rnrRetry: 7 }, function* (w) {
    const src = yield* w.buffer(w.client, size, 'pinned', { touch: true });
    const t0 = w.now;
    const dst: BenchBuffer = yield* w.buffer(w.server, size, config.kind);
    if (config.cpuWritten) yield* w.cpuTouch(w.server, dst.addr, size);
    const prefetchNs = config.prefetch === null ? 0 : yield* w.prefetch(dst, config.prefetch);
    const setupNs = w.now - t0;
    const s0 = w.stats(w.server);
    const first = yield* w.write(src, dst, size);
    const s1 = w.stats(w.server);
    const steady = yield* w.write(src, dst, size);
    const s2 = w.stats(w.server);
    return {
      config: config.id,
      size,
      firstNs: first.ns,
      steadyNs: steady.ns,
      firstStatus: first.status,
      steadyStatus: steady.status,
      setupNs,
      prefetchNs,
      pageFaults: s1.page_faults - s0.page_faults,
      steadyPageFaults: s2.page_faults - s1.page_faults,
      pagePrefetch: s1.page_prefetch,
    };
  });
}

function checkSize(size: unknown): number {
  try {
    return checkBytes('message size', size, FIRST_TOUCH_MAX_SIZE);
  } catch (e) {
    throw new Errno(
      'EINVAL',
      `study first-touch: ${(e as Error).message.replace(/^EINVAL: /, '')}`,
    );
  }
}

/** EINVAL for an empty list, a size out of [4 KiB, 16 MiB] or not a multiple of 4 KiB, or a repeat. */
export function checkFirstTouchSizes(sizes: readonly number[]): readonly number[] {
  if (!Array.isArray(sizes) || sizes.length === 0)
    throw new Errno('EINVAL', 'study first-touch: the list of message sizes is empty');
  const seen = new Set<number>();
  for (const s of sizes) {
    checkSize(s);
    if (seen.has(s)) throw new Errno('EINVAL', `study first-touch: message size ${s} given twice`);
    seen.add(s);
  }
  return sizes;
}

function sizeLabel(bytes: number): string {
  return bytes >= MiB && bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`;
}

/**
 * `odpsim study first-touch`: the first and the second RDMA WRITE into a server buffer that is
 * pinned, ODP, or ODP prefetched in one of several ways, by message size (default
 * {@link FIRST_TOUCH_SIZES}). EINVAL for bad sizes (see {@link checkFirstTouchSizes}).
 */
export function studyFirstTouch(
  opts: StudyOptions & { sizes?: readonly number[] } = {},
): StudyResult {
  const sizes = checkFirstTouchSizes(opts.sizes ?? FIRST_TOUCH_SIZES);
  const base: StudyOptions = {
    ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    ...(opts.costs === undefined ? {} : { costs: opts.costs }),
  };
  const cells: FirstTouchCell[] = [];
  for (const size of sizes)
    for (const config of FIRST_TOUCH_CONFIGS) cells.push(measureFirstTouch(config, size, base));
  const cell = (size: number, id: string) => cells.find((c) => c.size === size && c.config === id)!;
  const header = ['size', ...FIRST_TOUCH_CONFIGS.map((c) => c.label)];
  const table = (title: string, f: (c: FirstTouchCell) => string): StudyTable => ({
    title,
    header,
    rows: sizes.map((s) => [sizeLabel(s), ...FIRST_TOUCH_CONFIGS.map((c) => f(cell(s, c.id)))]),
  });
  const latency = (ns: number, status: string) =>
    status === 'SUCCESS' ? formatMicros(ns) : status;
  const tables = [
    table(
      'RDMA WRITE latency, first / second WRITE into the buffer, µs',
      (c) => `${latency(c.firstNs, c.firstStatus)} / ${latency(c.steadyNs, c.steadyStatus)}`,
    ),
    table(
      'Server HCA counters at the end of the first WRITE: page_faults / page_prefetch',
      (c) => `${c.pageFaults} / ${c.pagePrefetch}`,
    ),
    table('Setup before the first WRITE (ibv_reg_mr, CPU writes, ibv_advise_mr), µs', (c) =>
      formatMicros(c.setupNs),
    ),
  ];
  const series = (pick: (c: FirstTouchCell) => number) =>
    FIRST_TOUCH_CONFIGS.map((config) => ({
      name: config.label,
      points: sizes.map((s) => {
        const c = cell(s, config.id);
        const ok = c.firstStatus === 'SUCCESS' && c.steadyStatus === 'SUCCESS';
        return [s / KiB, ok ? pick(c) / 1000 : null] as const;
      }),
    }));
  const charts: ChartSpec[] = [
    {
      id: 'first-write',
      title: 'First RDMA WRITE into a fresh server buffer',
      x: { label: 'message size (KiB)', log: true },
      y: { label: 'latency (µs)', log: true },
      series: series((c) => c.firstNs),
    },
    {
      id: 'steady-write',
      title: 'Second RDMA WRITE into the same buffer',
      x: { label: 'message size (KiB)', log: true },
      y: { label: 'latency (µs)', log: true },
      series: series((c) => c.steadyNs),
    },
  ];
  return {
    study: 'first-touch',
    title: `First-touch cost of an ODP MR: the first and the second RDMA WRITE into a fresh server buffer, ${sizes.map(sizeLabel).join(', ')}, pinned vs ODP with and without prefetch`,
    tables,
    notes: notes(sizes, cell),
    charts,
    data: {
      sizes,
      configs: FIRST_TOUCH_CONFIGS.map((c) => ({ id: c.id, label: c.label })),
      minRnrTimer: FIRST_TOUCH_RNR_TIMER,
      rnrRetry: 7,
      seed: opts.seed ?? 1,
      cells,
    },
  };
}

function notes(
  sizes: readonly number[],
  cell: (size: number, id: string) => FirstTouchCell,
): string[] {
  const lo = sizes.reduce((a, b) => Math.min(a, b));
  const hi = sizes.reduce((a, b) => Math.max(a, b));
  const ratio = (s: number) => (cell(s, 'odp').firstNs / cell(s, 'pinned').firstNs).toFixed(1);
  const perPage = (s: number) => {
    const c = cell(s, 'odp');
    return formatMicros((c.firstNs - cell(s, 'pinned').firstNs) / (s / PAGE_SIZE));
  };
  const sync = cell(hi, 'odp-prefetch-sync');
  return [
    "The ODP MR is the responder's (the server's, written by the client): the usual deployment " +
      'registers a large receive or storage region on demand to avoid pinning it, and a fault ' +
      'there costs the requester RNR NAKs on top of the fault. The client writes from a pinned, ' +
      'already written buffer, so it never faults itself.',
    `Server QP: min_rnr_timer ${FIRST_TOUCH_RNR_TIMER} (10 µs) and rnr_retry 7 (retry for ever): ` +
      'while the fault is handled every retry is NAKed again; the WRITE goes through at the ' +
      'first retry after PAGE_FAULT_RESUME.',
    'The server buffer is fresh (mmap, never written): registering it maps nothing in the HCA ' +
      '(mlx5_ib_init_odp_mr takes only what the CPU already maps), so the first WRITE faults ' +
      'every page in: zero-filled by the CPU fault path, then one UMR.',
    `First WRITE, ODP vs pinned: ${ratio(lo)}x at ${sizeLabel(lo)}, ${ratio(hi)}x at ${sizeLabel(hi)} ` +
      `(${perPage(hi)} µs more per page there); the second WRITE is the same as pinned ` +
      `(${formatMicros(cell(hi, 'odp').steadyNs)} vs ${formatMicros(cell(hi, 'pinned').steadyNs)} µs at ${sizeLabel(hi)}).`,
    `A synchronous prefetch (PREFETCH_WRITE with FLUSH) removes the fault: the first WRITE runs at the pinned latency, the ${formatMicros(sync.prefetchNs)} µs moving into ibv_advise_mr() at ${sizeLabel(hi)}. ` +
      'An asynchronous one posted just before the WRITE has not finished when the first packet ' +
      'arrives: the WRITE still faults.',
    'PREFETCH_NO_FAULT maps only pages the CPU already maps: nothing on a fresh buffer (its ' +
      'page_prefetch still counts the range, as ib_umem_odp_map_dma_and_lock returns the pages ' +
      'it walked), everything on a buffer the CPU wrote after registration.',
    'A read-only PREFETCH of a fresh writable buffer maps the zero page; the WRITE then breaks ' +
      'copy-on-write on each page, each COW invalidates the HCA mapping and restarts the fault ' +
      '(fault_contentions, hmm.retry), so the first WRITE is slower than with no prefetch.',
    'The fault trigger is drawn from the spread of Lesokhin et al. (ASPLOS 2017, Table 4) with ' +
      "the run's seed; every cell is a world of its own and draws at the same quantile, so cells " +
      'compare. Another seed draws another trigger for every cell alike, but a responder fault ' +
      'completes at the next RNR retry after it (every 10 µs), so cells can shift by one retry.',
  ];
}
