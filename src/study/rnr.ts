/**
 * `odpsim study rnr`: what a responder page fault costs a requester, as a function of the two
 * RC settings that govern its wait: the responder's min_rnr_timer (how long the requester
 * waits after an RNR NAK) and the requester's rnr_retry (how many RNR NAKs it accepts).
 *
 * One RDMA WRITE of 4 KiB into a fresh page of a server's ODP MR: the server's HCA misses the
 * translation, stops its QP's responder side and raises a page fault; until
 * PAGE_FAULT_RESUME every packet is answered with an RNR NAK. The client waits the timer and
 * retries; with rnr_retry n < 7 the (n + 1)-th NAK completes the WRITE with
 * RNR_RETRY_EXC_ERR (and the QP goes to the error state), 7 retries for ever. Each cell is a
 * world of its own with the same seed, so the fault takes the same time in every cell.
 */
import { RNR_RETRY_INFINITE, RNR_TIMER_NS } from '../drivers/rdma/core/ib-verbs.ts';
import { Errno } from '../lib/errors.ts';
import type { ChartSpec } from './chart.ts';
import { checkRnrRetry, checkRnrTimer, formatMicros, runBench } from './rdma-bench.ts';
import type { StudyOptions, StudyResult } from './study.ts';

/**
 * The default min_rnr_timer encodings (IBA table 45): 10 µs to 491.52 ms, then 0, the
 * longest (655.36 ms); 14 is 1.28 ms, 19 is 7.68 ms.
 */
export const RNR_STUDY_TIMERS: readonly number[] = [
  1, 3, 5, 7, 9, 12, 14, 16, 19, 22, 25, 28, 31, 0,
];
/** The default rnr_retry values: none, one, three, and for ever. */
export const RNR_STUDY_RETRIES: readonly number[] = [0, 1, 3, 7];
/** The WRITE's size: one page. */
export const RNR_STUDY_BYTES = 4096;

/** One cell: the WRITE under one (min_rnr_timer, rnr_retry). */
export interface RnrCell {
  /** The encoding and what it means, ns. */
  readonly timer: number;
  readonly timerNs: number;
  readonly retry: number;
  /** The completion's status. */
  readonly status: string;
  /** Post to completion (successful or not), ns. */
  readonly ns: number;
  /** RNR NAKs the requester received. */
  readonly rnrNaks: number;
  /** The server's fault, from the page-fault event to PAGE_FAULT_RESUME, ns (null if it never resumed). */
  readonly faultNs: number | null;
}

/** Measures one cell in a world of its own. */
export function measureRnr(timer: number, retry: number, opts: StudyOptions = {}): RnrCell {
  return runBench({ ...opts, minRnrTimer: timer, rnrRetry: retry }, function* (w) {
    const src = yield* w.buffer(w.client, RNR_STUDY_BYTES, 'pinned', { touch: true });
    const dst = yield* w.buffer(w.server, RNR_STUDY_BYTES, 'odp');
    const rec = w.record(['rdma-nak', 'rdma-pagefault', 'rdma-resume']);
    const m = yield* w.write(src, dst, RNR_STUDY_BYTES);
    rec.stop();
    const server = w.server.dev.name;
    const fault = rec.events.find((e) => e.type === 'rdma-pagefault' && e.dev === server);
    const resume = rec.events.find((e) => e.type === 'rdma-resume' && e.dev === server);
    return {
      timer,
      timerNs: RNR_TIMER_NS[timer]!,
      retry,
      status: m.status,
      ns: m.ns,
      rnrNaks: rec.count('rdma-nak', (e) => e.type === 'rdma-nak' && e.kind === 'rnr'),
      faultNs: fault !== undefined && resume !== undefined ? resume.time - fault.time : null,
    };
  });
}

function checkList(
  what: string,
  list: readonly number[],
  check: (v: unknown, what: string) => number,
): readonly number[] {
  if (!Array.isArray(list) || list.length === 0)
    throw new Errno('EINVAL', `study rnr: the list of ${what} values is empty`);
  const seen = new Set<number>();
  for (const v of list) {
    try {
      check(v, what);
    } catch (e) {
      throw new Errno('EINVAL', `study rnr: ${(e as Error).message.replace(/^EINVAL: /, '')}`);
    }
    if (seen.has(v)) throw new Errno('EINVAL', `study rnr: ${what} ${v} given twice`);
    seen.add(v);
  }
  return list;
}

/**
 * `odpsim study rnr`: the latency (or the error) of an RDMA WRITE that hits a responder page
 * fault, for each min_rnr_timer encoding of `timers` (default {@link RNR_STUDY_TIMERS}) and
 * rnr_retry of `retries` (default {@link RNR_STUDY_RETRIES}). EINVAL for an empty list, an
 * encoding outside 0–31, a retry count outside 0–7, or a repeat.
 */
export function studyRnr(
  opts: StudyOptions & { timers?: readonly number[]; retries?: readonly number[] } = {},
): StudyResult {
  const timers = checkList('min_rnr_timer', opts.timers ?? RNR_STUDY_TIMERS, checkRnrTimer);
  const retries = checkList('rnr_retry', opts.retries ?? RNR_STUDY_RETRIES, checkRnrRetry);
  const base: StudyOptions = {
    ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    ...(opts.costs === undefined ? {} : { costs: opts.costs }),
  };
  const cells: RnrCell[] = [];
  for (const t of timers) for (const r of retries) cells.push(measureRnr(t, r, base));
  const cell = (t: number, r: number) => cells.find((c) => c.timer === t && c.retry === r)!;
  const ms = (ns: number) => ns / 1_000_000;
  const retryLabel = (r: number) =>
    r === RNR_RETRY_INFINITE ? 'rnr_retry 7 (for ever)' : `rnr_retry ${r}`;
  const header = ['min_rnr_timer', 'wait (ms)', ...retries.map(retryLabel)];
  const timerCells = (t: number) => [String(t), String(ms(RNR_TIMER_NS[t]!))];
  const byX = [...timers].sort((a, b) => RNR_TIMER_NS[a]! - RNR_TIMER_NS[b]!);
  const chart: ChartSpec = {
    id: 'latency',
    title: 'RDMA WRITE hitting a responder fault: completion latency by RNR timer',
    x: { label: 'min_rnr_timer (ms)', log: true },
    y: { label: 'latency (ms)', log: true },
    series: retries.map((r) => ({
      name: retryLabel(r),
      points: byX.map((t) => {
        const c = cell(t, r);
        return [ms(c.timerNs), c.status === 'SUCCESS' ? ms(c.ns) : null] as const;
      }),
    })),
  };
  const faults = cells.map((c) => c.faultNs).filter((f): f is number => f !== null);
  const faultNs = faults.length > 0 ? Math.max(...faults) : null;
  return {
    study: 'rnr',
    title: `RNR NAK cost of a responder ODP fault: a 4 KiB RDMA WRITE into a fresh ODP page, ${timers.length} min_rnr_timer values x rnr_retry ${retries.join(', ')}`,
    tables: [
      {
        title: 'Completion latency of the WRITE, µs, or its error status',
        header,
        rows: timers.map((t) => [
          ...timerCells(t),
          ...retries.map((r) => {
            const c = cell(t, r);
            return c.status === 'SUCCESS' ? formatMicros(c.ns) : c.status;
          }),
        ]),
      },
      {
        title: 'RNR NAKs the client received',
        header,
        rows: timers.map((t) => [
          ...timerCells(t),
          ...retries.map((r) => String(cell(t, r).rnrNaks)),
        ]),
      },
    ],
    notes: notes(timers, retries, cell, faultNs),
    charts: [chart],
    data: {
      bytes: RNR_STUDY_BYTES,
      timers,
      retries,
      seed: opts.seed ?? 1,
      faultNs,
      cells,
    },
  };
}

function notes(
  timers: readonly number[],
  retries: readonly number[],
  cell: (t: number, r: number) => RnrCell,
  faultNs: number | null,
): string[] {
  const out = [
    'The server registers a fresh 4 KiB buffer on demand; the client writes it once from a ' +
      'pinned buffer. The server fault stops its responder side until PAGE_FAULT_RESUME; every ' +
      'packet meanwhile is answered with an RNR NAK, and the client waits min_rnr_timer before ' +
      'the next try (IBA table 45: encoding 0 is the longest wait, 655.36 ms).',
  ];
  if (faultNs !== null)
    out.push(
      `The fault took ${formatMicros(faultNs)} µs from the HCA's page-fault event to ` +
        'PAGE_FAULT_RESUME (trigger, driver, UMR and resume; Lesokhin et al. ASPLOS 2017). ' +
        'The WRITE completes at the first retry after it: a timer t needs about ' +
        `${formatMicros(faultNs)} µs / (t + the round trip) retries, and a timer longer than ` +
        'the fault turns the fault into one full timer of latency.',
    );
  if (retries.includes(0))
    out.push(
      'rnr_retry 0 fails at the first RNR NAK whatever the timer: with ODP on the responder a ' +
        'requester must allow RNR retries.',
    );
  const longest = timers.find((t) => t === 0);
  const forever = retries.find((r) => r === RNR_RETRY_INFINITE);
  if (longest !== undefined && forever !== undefined)
    out.push(
      `min_rnr_timer 0 stalls the WRITE for ${formatMicros(cell(longest, forever).ns)} µs: ` +
        'an application that passes 0 (a zeroed ibv_qp_attr at RTR) pays 655 ms per ' +
        'responder fault.',
    );
  out.push(
    'rnr_retry 7 means retry for ever (never RNR_RETRY_EXC_ERR); an error moves the QP to the ' +
      'error state, so the chart has a gap there.',
  );
  return out;
}
