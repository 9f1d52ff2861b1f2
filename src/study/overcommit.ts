/**
 * `odpsim study overcommit`: RDMA into a registered working set larger than RAM. A server on a
 * small machine (8 MiB of RAM by default, swap enough for the largest buffer, direct reclaim
 * on) registers one buffer of `pressure` × RAM, pinned or on demand; a client on another
 * machine writes the whole buffer twice over, front to back, in 256 KiB RDMA WRITEs, one at a
 * time. Throughput is bytes per second of virtual time.
 *
 * Pinning must hold every page resident at once, so past what the machine can hold the
 * registration fails. ODP holds nothing: reclaim swaps the server's pages out, each eviction
 * an invalidation of the HCA's mapping (page_invalidations), and the next WRITE there faults
 * them back in (page_faults, swap-ins), with RNR NAKs to the client meanwhile.
 */

import type { Co } from '../kernel/task.ts';
import { Errno, isErrno } from '../lib/errors.ts';
import { num } from '../lib/format.ts';
import { PAGE_SIZE } from '../mm/constants.ts';
import type { ChartSpec } from './chart.ts';
import {
  type BenchBuffer,
  type BenchWorld,
  checkBytes,
  formatMicros,
  type MrKind,
  runBench,
  statsDelta,
} from './rdma-bench.ts';
import type { StudyOptions, StudyResult } from './study.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Default pressures: registered buffer / RAM. */
export const OVERCOMMIT_PRESSURES: readonly number[] = [0.5, 0.75, 1, 1.5, 2, 3];
/** The largest pressure accepted (the run time grows with it). */
export const OVERCOMMIT_MAX_PRESSURE = 8;
/** Default RAM of the server's machine: 8 MiB (2048 frames). */
export const OVERCOMMIT_RAM = 8 * MiB;
/** Bytes of each RDMA WRITE. */
export const OVERCOMMIT_CHUNK = 256 * KiB;
/** Passes over the buffer: the first touches it, the second is the steady state. */
export const OVERCOMMIT_PASSES = 2;
/** min_rnr_timer of the server's QP: encoding 1, 10 µs (rnr_retry 7). */
export const OVERCOMMIT_RNR_TIMER = 1;

/** One pass of WRITEs over the whole buffer. */
export interface OvercommitPass {
  /** Status of the last WRITE (the first one that failed, if one did). */
  readonly status: string;
  readonly ns: number;
  /** Bytes written / virtual seconds, in MB/s (10^6 bytes); null when a WRITE failed. */
  readonly mbps: number | null;
  /** The server HCA's counters over the pass. */
  readonly pageFaults: number;
  readonly pageInvalidations: number;
  readonly faultContentions: number;
  /** Server pages written to swap and read back over the pass. */
  readonly swapOuts: number;
  readonly swapIns: number;
}

/** One world: one pressure, one kind of MR. */
export interface OvercommitRun {
  readonly kind: MrKind;
  readonly pressure: number;
  readonly bytes: number;
  /** 'registered', or the errno ibv_reg_mr() failed with. */
  readonly registration: string;
  /** ibv_reg_mr(), successful or not, ns. */
  readonly registerNs: number;
  readonly passes: readonly OvercommitPass[];
}

function bufferBytes(pressure: number, ram: number): number {
  return Math.max(1, Math.round((pressure * ram) / PAGE_SIZE)) * PAGE_SIZE;
}

/** Runs one world: a buffer of `pressure` × `ram`, registered as `kind`, written twice over. */
export function measureOvercommit(
  kind: MrKind,
  pressure: number,
  ram: number,
  swap: number,
  opts: StudyOptions = {},
): OvercommitRun {
  const bytes = bufferBytes(pressure, ram);
  return runBench(
    {
      ...opts,
      ramBytes: ram,
      swapBytes: swap,
      reclaim: true,
      minRnrTimer: OVERCOMMIT_RNR_TIMER,
      rnrRetry: 7,
    },
    function* (w) {
      const src = yield* w.buffer(w.client, OVERCOMMIT_CHUNK, 'pinned', { touch: true });
      const addr = yield* w.map(w.server, bytes);
      const t0 = w.now;
      const reg = yield* w.tryRegister(w.server, addr, bytes, kind);
      const registerNs = w.now - t0;
      if (isErrno(reg))
        return { kind, pressure, bytes, registration: reg.code, registerNs, passes: [] };
      const passes: OvercommitPass[] = [];
      for (let p = 0; p < OVERCOMMIT_PASSES; p++) passes.push(yield* pass(w, src, reg));
      return { kind, pressure, bytes, registration: 'registered', registerNs, passes };
    },
  );
}

/** One pass: WRITEs of OVERCOMMIT_CHUNK front to back, stopping at the first failure. */
function* pass(w: BenchWorld, src: BenchBuffer, dst: BenchBuffer): Co<OvercommitPass> {
  const s0 = w.stats(w.server);
  const sw0 = w.swapTraffic();
  const t0 = w.now;
  let status = 'SUCCESS';
  for (let off = 0; off < dst.bytes && status === 'SUCCESS'; off += OVERCOMMIT_CHUNK)
    status = (yield* w.write(src, dst, Math.min(OVERCOMMIT_CHUNK, dst.bytes - off), { dst: off }))
      .status;
  const ns = w.now - t0;
  const d = statsDelta(s0, w.stats(w.server));
  const sw1 = w.swapTraffic();
  return {
    status,
    ns,
    mbps: status === 'SUCCESS' ? dst.bytes / 1e6 / (ns / 1e9) : null,
    pageFaults: d.page_faults,
    pageInvalidations: d.page_invalidations,
    faultContentions: d.fault_contentions,
    swapOuts: sw1.outs - sw0.outs,
    swapIns: sw1.ins - sw0.ins,
  };
}

/** EINVAL for an empty list, a pressure that is not a finite number in (0, 8], or a repeat. */
export function checkPressures(pressures: readonly number[]): readonly number[] {
  if (!Array.isArray(pressures) || pressures.length === 0)
    throw new Errno('EINVAL', 'study overcommit: the list of pressures is empty');
  const seen = new Set<number>();
  for (const p of pressures) {
    if (typeof p !== 'number' || !Number.isFinite(p) || p <= 0 || p > OVERCOMMIT_MAX_PRESSURE)
      throw new Errno(
        'EINVAL',
        `study overcommit: pressure ${String(p)} is not a buffer/RAM ratio in (0, ${OVERCOMMIT_MAX_PRESSURE}]`,
      );
    if (seen.has(p)) throw new Errno('EINVAL', `study overcommit: pressure ${p} given twice`);
    seen.add(p);
  }
  return pressures;
}

function mib(bytes: number): string {
  return String(Math.round((bytes / MiB) * 100) / 100);
}

/** A rate for a table: whole above 100, one decimal below, '0' for none. */
function rate(n: number | null): string {
  if (n === null) return '-';
  if (n === 0) return '0';
  return n >= 100 ? num(Math.round(n)) : n.toFixed(1);
}

/**
 * `odpsim study overcommit`: throughput and device faults of RDMA WRITEs over a registered
 * buffer of each pressure × RAM (default {@link OVERCOMMIT_PRESSURES}), pinned and ODP, on a
 * machine of `ramBytes` (default {@link OVERCOMMIT_RAM}; 1 MiB to 64 MiB, a multiple of
 * 4 KiB). EINVAL for bad pressures (see {@link checkPressures}) or RAM.
 */
export function studyOvercommit(
  opts: StudyOptions & { pressures?: readonly number[]; ramBytes?: number } = {},
): StudyResult {
  const pressures = checkPressures(opts.pressures ?? OVERCOMMIT_PRESSURES);
  const ram = opts.ramBytes ?? OVERCOMMIT_RAM;
  try {
    checkBytes('RAM', ram, 64 * MiB);
  } catch (e) {
    throw new Errno('EINVAL', `study overcommit: ${(e as Error).message.replace(/^EINVAL: /, '')}`);
  }
  if (ram < MiB) throw new Errno('EINVAL', `study overcommit: RAM ${ram} is below 1 MiB`);
  // Swap holds the largest buffer whole, so swap space never limits ODP.
  const swap = bufferBytes(Math.max(1, Math.ceil(Math.max(...pressures))), ram);
  const base: StudyOptions = {
    ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    ...(opts.costs === undefined ? {} : { costs: opts.costs }),
  };
  const runs: OvercommitRun[] = [];
  for (const p of pressures)
    for (const kind of ['pinned', 'odp'] as const)
      runs.push(measureOvercommit(kind, p, ram, swap, base));
  const run = (p: number, kind: MrKind) => runs.find((r) => r.pressure === p && r.kind === kind)!;
  const perPass = (r: OvercommitRun, f: (x: OvercommitPass) => string) =>
    r.passes.length === 0 ? r.registration : r.passes.map(f).join(' / ');
  const faultsPerSec = (x: OvercommitPass) => x.pageFaults / (x.ns / 1e9);
  const byPressure = [...pressures].sort((a, b) => a - b);
  const series = (
    name: string,
    kind: MrKind,
    pass: number,
    f: (x: OvercommitPass) => number | null,
  ) => ({
    name,
    points: byPressure.map((p) => {
      const x = run(p, kind).passes[pass];
      return [p, x === undefined ? null : f(x)] as const;
    }),
  });
  const charts: ChartSpec[] = [
    {
      id: 'throughput',
      title: `RDMA WRITE throughput over a registered buffer of pressure x RAM (${mib(ram)} MiB)`,
      x: { label: 'pressure (registered buffer / RAM)' },
      y: { label: 'throughput (MB/s of virtual time)', log: true },
      series: [
        series('pinned', 'pinned', 1, (x) => x.mbps),
        series('ODP, first pass', 'odp', 0, (x) => x.mbps),
        series('ODP, second pass', 'odp', 1, (x) => x.mbps),
      ],
    },
    {
      id: 'faults',
      title: 'Server HCA page faults per second of virtual time (ODP)',
      x: { label: 'pressure (registered buffer / RAM)' },
      y: { label: 'page faults/s' },
      series: [
        series('ODP, first pass', 'odp', 0, faultsPerSec),
        series('ODP, second pass', 'odp', 1, faultsPerSec),
      ],
    },
  ];
  const header = ['pressure', 'buffer (MiB)'];
  return {
    study: 'overcommit',
    title: `Registered working set vs RAM: ${OVERCOMMIT_PASSES} passes of 256 KiB RDMA WRITEs over a buffer of ${pressures.join(', ')} x ${mib(ram)} MiB of RAM, pinned vs ODP`,
    tables: [
      {
        title: 'Registration and throughput (MB/s of virtual time), first / second pass',
        header: [...header, 'pinned reg (µs)', 'pinned MB/s', 'ODP reg (µs)', 'ODP MB/s'],
        rows: byPressure.map((p) => {
          const pin = run(p, 'pinned');
          const odp = run(p, 'odp');
          return [
            String(p),
            mib(pin.bytes),
            formatMicros(pin.registerNs),
            perPass(pin, (x) => (x.mbps === null ? x.status : rate(x.mbps))),
            formatMicros(odp.registerNs),
            perPass(odp, (x) => (x.mbps === null ? x.status : rate(x.mbps))),
          ];
        }),
      },
      {
        title: 'ODP: server HCA counters and swap, first / second pass',
        header: [
          ...header,
          'page_faults',
          'faults/s',
          'page_invalidations',
          'fault_contentions',
          'swap out',
          'swap in',
        ],
        rows: byPressure.map((p) => {
          const odp = run(p, 'odp');
          return [
            String(p),
            mib(odp.bytes),
            perPass(odp, (x) => num(x.pageFaults)),
            perPass(odp, (x) => rate(faultsPerSec(x))),
            perPass(odp, (x) => num(x.pageInvalidations)),
            perPass(odp, (x) => num(x.faultContentions)),
            perPass(odp, (x) => num(x.swapOuts)),
            perPass(odp, (x) => num(x.swapIns)),
          ];
        }),
      },
    ],
    notes: notes(ram, swap, byPressure, run),
    charts,
    data: {
      ramBytes: ram,
      swapBytes: swap,
      chunkBytes: OVERCOMMIT_CHUNK,
      passes: OVERCOMMIT_PASSES,
      minRnrTimer: OVERCOMMIT_RNR_TIMER,
      rnrRetry: 7,
      seed: opts.seed ?? 1,
      pressures,
      runs,
    },
  };
}

function notes(
  ram: number,
  swap: number,
  pressures: readonly number[],
  run: (p: number, kind: MrKind) => OvercommitRun,
): string[] {
  const out = [
    `Server machine: ${mib(ram)} MiB of RAM (${ram / PAGE_SIZE} frames), ${mib(swap)} MiB of swap, ` +
      'direct reclaim when an allocation finds no free frame; nothing else uses its memory. The ' +
      'client writes from a pinned 256 KiB buffer on a machine of its own. The results scale: ' +
      'throughput depends on the pressure, not on the RAM size.',
    `Server QP: min_rnr_timer ${OVERCOMMIT_RNR_TIMER} (10 µs), rnr_retry 7; the processes may pin ` +
      'without limit (CAP_IPC_LOCK), so a pinned registration fails only for want of memory.',
  ];
  const failed = pressures.filter((p) => run(p, 'pinned').registration !== 'registered');
  const ok = pressures.filter((p) => run(p, 'pinned').registration === 'registered');
  if (failed.length > 0)
    out.push(
      `Pinned registration failed from pressure ${failed[0]} (${run(failed[0]!, 'pinned').registration}): ` +
        'ib_umem_get pins every page at once and reclaim cannot free a pinned page. The model ' +
        'has no kernel memory of its own, so pinning exactly all of RAM still succeeds here; a ' +
        'real machine fails earlier.',
    );
  if (ok.length > 0) {
    const p = ok[ok.length - 1]!;
    out.push(
      `Pinned runs at the line rate from the first pass (${rate(run(p, 'pinned').passes[1]?.mbps ?? null)} MB/s at ${p}), ` +
        'having paid its page faults at registration.',
    );
  }
  const over = pressures.filter((p) => p > 1);
  if (over.length > 0) {
    const hi = over[over.length - 1]!;
    const s = run(hi, 'odp').passes[1];
    if (s !== undefined)
      out.push(
        `ODP past RAM: every pass faults every page back in. The LRU evicts the oldest pages ` +
          'and the WRITEs sweep the buffer in order, so each page is evicted before it comes ' +
          `round again, whatever the pressure: at ${hi} the second pass faulted ${s.pageFaults} ` +
          `pages, read ${s.swapIns} back from swap and wrote ${s.swapOuts} out (${rate(s.mbps)} MB/s).`,
      );
  }
  out.push(
    'page_faults counts pages the HCA faulted in; faults/s is per second of virtual time. ' +
      'fault_contentions counts fault passes restarted because reclaim invalidated the same MR ' +
      'meanwhile.',
  );
  return out;
}
