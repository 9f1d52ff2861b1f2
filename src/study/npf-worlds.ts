/**
 * The worlds of `odpsim study npf` (npf.ts), built with rdma-bench.ts: device page faults
 * timed against a second access of the same pages, invalidations timed against the same
 * MADV_DONTNEED with nothing mapped in the HCA, a responder fault under the longest RNR timer,
 * and registrations against a machine's RAM.
 */
import type { IbWcStatus } from '../drivers/rdma/core/ib-verbs.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { MADV_DONTNEED, PAGE_SIZE } from '../mm/constants.ts';
import { madvise } from '../mm/madvise.ts';
import { createProcess } from '../mm/process.ts';
import { openEndpoint } from '../scenarios/rdma-kit.ts';
import { type BenchBuffer, type BenchWorld, type MrKind, runBench } from './rdma-bench.ts';
import type { StudyOptions } from './study.ts';

const MiB = 1 << 20;
const GiB = 1 << 30;
/** One-page faults timed for P1 and P5: enough for a p99. */
export const NPF_FAULTS = 1000;
/** Pages of P2 and P3 (the paper's 4 MiB message). */
const MANY = 1024;
/** 1024-page faults P2 averages: one draw of the trigger would move it by ±15%. */
const MANY_FAULTS = 8;

/** Quantiles of a sample, ns. */
export interface Quantiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** P1, P2, P3, P5: device fault times, ns. */
export interface NpfFaults {
  /** Each one-page fault, sorted. */
  readonly onePage: readonly number[];
  readonly oneMean: number;
  readonly quantiles: Quantiles;
  /** One fault over 1024 pages (the mean of eight). */
  readonly manyOnce: number;
  /** The 1024 pages faulted one page per request, summed. */
  readonly manyOneByOne: number;
}

/** P4: what an invalidation adds to MADV_DONTNEED, ns. */
export interface Invalidations {
  readonly one: number;
  readonly many: number;
  /** 1024 pages registered but never mapped in the HCA, against no MR at all. */
  readonly unmappedExtra: number;
}

/** P6: one RDMA WRITE hitting a responder fault under min_rnr_timer 0. */
export interface RnrStall {
  readonly rnrRetry: number;
  readonly status: IbWcStatus;
  readonly ns: number;
  readonly rnrNaks: number;
}

/** P7 and P8: registrations against RAM; 'ok' or the errno (with where it happened). */
export interface NpfMemory {
  readonly ramBytes: number;
  readonly processBytes: number;
  readonly pinnedProcesses: readonly string[];
  readonly odpProcesses: readonly string[];
  readonly bufferBytes: number;
  readonly serverBuffers: number;
  readonly pinnedServer: string;
  readonly odpServer: string;
}

/**
 * An ODP buffer of the client registered before its CPU writes it: its pages are present in
 * the CPU page table and absent from the HCA's (the snapshot at registration found none), so
 * the first RDMA access takes a minor device fault.
 */
function* coldOdp(w: BenchWorld, pages: number): Co<BenchBuffer> {
  const addr = yield* w.map(w.client, pages * PAGE_SIZE);
  const buf = yield* w.register(w.client, addr, pages * PAGE_SIZE, 'odp');
  yield* w.cpuTouch(w.client, addr, pages * PAGE_SIZE);
  return buf;
}

/** A WRITE of [offset, offset + len) of `src`, twice: the first time minus the second, ns. */
function* faultTime(
  w: BenchWorld,
  src: BenchBuffer,
  dst: BenchBuffer,
  offset: number,
  len: number,
): Co<number> {
  const cold = yield* w.write(src, dst, len, { src: offset });
  const warm = yield* w.write(src, dst, len, { src: offset });
  if (cold.status !== 'SUCCESS' || warm.status !== 'SUCCESS')
    throw new Error(`study npf: a WRITE completed ${cold.status}, then ${warm.status}`);
  return cold.ns - warm.ns;
}

/** The nearest-rank quantile of a sorted sample. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/** P1, P2, P3, P5: requester-side minor device faults. */
export function measureFaults(opts: StudyOptions): NpfFaults {
  return runBench({ ...opts, clientRamBytes: 128 * MiB }, function* (w) {
    const dst = yield* w.buffer(w.server, MANY * PAGE_SIZE, 'pinned');
    const single = yield* coldOdp(w, NPF_FAULTS);
    const onePage: number[] = [];
    for (let i = 0; i < NPF_FAULTS; i++)
      onePage.push(yield* faultTime(w, single, dst, i * PAGE_SIZE, PAGE_SIZE));
    let manyOnce = 0;
    for (let i = 0; i < MANY_FAULTS; i++) {
      const whole = yield* coldOdp(w, MANY);
      manyOnce += (yield* faultTime(w, whole, dst, 0, MANY * PAGE_SIZE)) / MANY_FAULTS;
    }
    const paged = yield* coldOdp(w, MANY);
    let manyOneByOne = 0;
    for (let i = 0; i < MANY; i++)
      manyOneByOne += yield* faultTime(w, paged, dst, i * PAGE_SIZE, PAGE_SIZE);
    onePage.sort((a, b) => a - b);
    const quantiles = {
      p50: quantile(onePage, 0.5),
      p95: quantile(onePage, 0.95),
      p99: quantile(onePage, 0.99),
      max: onePage[onePage.length - 1]!,
    };
    const oneMean = onePage.reduce((a, b) => a + b, 0) / onePage.length;
    return { onePage, oneMean, quantiles, manyOnce, manyOneByOne };
  });
}

/** P4: MADV_DONTNEED of pages the HCA maps, against pages it never mapped and no MR. */
export function measureInvalidations(opts: StudyOptions): Invalidations {
  return runBench({ ...opts, clientRamBytes: 64 * MiB }, function* (w) {
    const dst = yield* w.buffer(w.server, MANY * PAGE_SIZE, 'pinned');
    const mm = w.client.proc.mm!;
    const discard = function* (addr: number, pages: number): Co<number> {
      const t0 = w.now;
      yield* madvise(mm, addr, pages * PAGE_SIZE, MADV_DONTNEED);
      return w.now - t0;
    };
    const time = function* (pages: number, mapped: boolean): Co<number> {
      const buf = yield* coldOdp(w, pages);
      if (mapped) yield* w.write(buf, dst, pages * PAGE_SIZE);
      return yield* discard(buf.addr, pages);
    };
    const oneMapped = yield* time(1, true);
    const oneUnmapped = yield* time(1, false);
    const manyMapped = yield* time(MANY, true);
    const manyUnmapped = yield* time(MANY, false);
    const plain = yield* w.map(w.client, MANY * PAGE_SIZE, { touch: true });
    const noMr = yield* discard(plain, MANY);
    return {
      one: oneMapped - oneUnmapped,
      many: manyMapped - manyUnmapped,
      unmappedExtra: manyUnmapped - noMr,
    };
  });
}

/** P6: an RDMA WRITE into a server ODP page the HCA has not mapped, min_rnr_timer 0. */
export function measureRnrStall(opts: StudyOptions, rnrRetry: number): RnrStall {
  return runBench({ ...opts, minRnrTimer: 0, rnrRetry }, function* (w) {
    const src = yield* w.buffer(w.client, PAGE_SIZE, 'pinned', { touch: true });
    const addr = yield* w.map(w.server, PAGE_SIZE);
    const dst = yield* w.register(w.server, addr, PAGE_SIZE, 'odp');
    yield* w.cpuTouch(w.server, addr, PAGE_SIZE);
    const naks = w.record(['rdma-nak']);
    const m = yield* w.write(src, dst, PAGE_SIZE);
    naks.stop();
    return {
      rnrRetry,
      status: m.status,
      ns: m.ns,
      rnrNaks: naks.count('rdma-nak', (e) => e.kind === 'rnr'),
    };
  });
}

function outcome(r: BenchBuffer | Errno): string {
  return r instanceof Errno ? r.code : 'ok';
}

/** P7 and P8 on a machine of 8 GiB / `scale`. */
export function measureMemory(opts: StudyOptions, scale: number): NpfMemory {
  if (!Number.isInteger(Math.log2(scale)) || scale < 1 || scale > 1024)
    throw new Errno(
      'EINVAL',
      `study npf: --scale must be a power of two from 1 to 1024, got ${scale}`,
    );
  const ramBytes = (8 * GiB) / scale;
  const processBytes = (3 * GiB) / scale;
  const bufferBytes = GiB / scale;
  const serverBuffers = 10;
  const bench = { ...opts, ramBytes, swapBytes: ramBytes, maxSteps: 500_000_000 };
  const processes = (kind: MrKind): string[] =>
    runBench(bench, function* (w) {
      const out: string[] = [];
      for (let i = 0; i < 4; i++) {
        const proc = createProcess(w.server.machine, { capIpcLock: true });
        const ep = yield* openEndpoint(w.server.dev, proc);
        const side = { ...w.server, proc, ep };
        const addr = yield* w.map(side, processBytes);
        const r = yield* w.tryRegister(side, addr, processBytes, kind);
        if (r instanceof Errno) {
          out.push(r.code);
          continue;
        }
        // It runs: writes an eighth of its memory, and its HCA maps the first 256 KiB.
        yield* w.cpuTouch(side, addr, processBytes / 8);
        if (kind === 'odp') yield* w.prefetch(r, { advice: 'write', sync: true }, 0, 256 * 1024);
        out.push('ok');
      }
      return out;
    });
  const server = (kind: MrKind): string =>
    runBench(bench, function* (w) {
      const src = yield* w.buffer(w.client, PAGE_SIZE, 'pinned', { touch: true });
      const bufs: BenchBuffer[] = [];
      for (let i = 0; i < serverBuffers; i++) {
        const addr = yield* w.map(w.server, bufferBytes);
        const r = yield* w.tryRegister(w.server, addr, bufferBytes, kind);
        if (r instanceof Errno) return `${outcome(r)} at buffer ${i + 1}`;
        bufs.push(r);
      }
      // It serves: a client message lands in each buffer.
      for (const b of bufs) {
        const m = yield* w.write(src, b, PAGE_SIZE);
        if (m.status !== 'SUCCESS') return m.status;
      }
      return 'ok';
    });
  return {
    ramBytes,
    processBytes,
    pinnedProcesses: processes('pinned'),
    odpProcesses: processes('odp'),
    bufferBytes,
    serverBuffers,
    pinnedServer: server('pinned'),
    odpServer: server('odp'),
  };
}
