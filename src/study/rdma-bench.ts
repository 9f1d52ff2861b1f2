/**
 * A kit for RDMA measurement worlds: two machines (a server whose memory is under study, with
 * its RAM, optional swap and reclaim, and a client with memory to spare), a process on each
 * with its own mlx5-like HCA, and one connected RC QP pair between them. A study fills the
 * world through {@link BenchWorld}: buffers mapped and registered pinned or on demand
 * (ibv_reg_mr with or without IBV_ACCESS_ON_DEMAND), prefetch (ibv_advise_mr), and work
 * requests posted one at a time with the virtual time from post to completion measured.
 *
 * Everything runs under the timed strategy with the cost model (src/cost/), so the virtual
 * clock is the latency measure: no real clock, no real randomness; the same options give the
 * same numbers.
 */
import type { CostTally } from '../cost/model.ts';
import type { CostName } from '../cost/table.ts';
import type { OdpDesign } from '../drivers/rdma/core/device.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_READ,
  IB_ACCESS_REMOTE_WRITE,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
  IB_UVERBS_ADVISE_MR_FLAG_FLUSH,
  type IbWcStatus,
  RNR_TIMER_NS,
} from '../drivers/rdma/core/ib-verbs.ts';
import type { IbMr, IbSendWr } from '../drivers/rdma/core/objects.ts';
import { ibUverbsClose } from '../drivers/rdma/core/uverbs.ts';
import { ibAdviseMr, ibDeregMr, ibRegMr } from '../drivers/rdma/core/verbs.ts';
import '../drivers/rdma/events.ts';
import { Mlx5Device, type OdpStats } from '../drivers/rdma/hw/mlx5/main.ts';
import { current, Kernel } from '../kernel/kernel.ts';
import { TimedStrategy } from '../kernel/strategies/timed.ts';
import type { Co } from '../kernel/task.ts';
import type { TraceEventMap, TraceEventOf } from '../kernel/trace.ts';
import { Errno, isErrno } from '../lib/errors.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/constants.ts';
import { Machine } from '../mm/machine.ts';
import { mmap, populate } from '../mm/mmap.ts';
import { createProcess, exitMm, type Process } from '../mm/process.ts';
import {
  connectedPair,
  type Endpoint,
  openEndpoint,
  postAndWait,
  type QpEnd,
} from '../scenarios/rdma-kit.ts';
import type { StudyOptions } from './study.ts';

const MiB = 1024 * 1024;

/** How a world is built. Sizes are bytes, multiples of 4 KiB. */
export interface BenchOptions extends StudyOptions {
  /** RAM of the server's machine (frames = ramBytes / 4 KiB). Default 256 MiB. */
  readonly ramBytes?: number;
  /** Swap of the server's machine. Default 0: anonymous pages cannot be swapped out. */
  readonly swapBytes?: number;
  /** Direct reclaim when an allocation finds no free frame (default true). */
  readonly reclaim?: boolean;
  /** RAM of the client's machine. Default 64 MiB. */
  readonly clientRamBytes?: number;
  /** ODP design of both HCAs (default 2020, today's: the only one with ibv_advise_mr). */
  readonly odpDesign?: OdpDesign;
  /**
   * The responder's min_rnr_timer, as the 5-bit encoding (IBA table 45; 0 = 655.36 ms,
   * 1 = 10 µs). Default 1.
   */
  readonly minRnrTimer?: number;
  /** rnr_retry of the requester, 0–7 (7: retry for ever). Default 7. */
  readonly rnrRetry?: number;
  /** Scheduler steps before the run is stopped as runaway. Default 50,000,000. */
  readonly maxSteps?: number;
}

/** One end of the world: a machine, a process on it, its HCA, verbs endpoint and QP. */
export interface BenchSide {
  readonly name: 'server' | 'client';
  readonly machine: Machine;
  readonly proc: Process;
  readonly dev: Mlx5Device;
  readonly ep: Endpoint;
  /** This side's QP of the connected pair (posting on it reaches the other side). */
  readonly qp: QpEnd;
}

/** How a buffer is registered: pinned (ib_umem_get) or on demand (ib_umem_odp_get). */
export type MrKind = 'pinned' | 'odp';

/** A mapped buffer of one side and its MR. */
export interface BenchBuffer {
  readonly side: BenchSide;
  readonly addr: number;
  readonly bytes: number;
  readonly kind: MrKind;
  readonly mr: IbMr;
}

/**
 * ibv_advise_mr() as a study asks for it: `write` is IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
 * `read` _PREFETCH (device mapping never writable), `no-fault` _PREFETCH_NO_FAULT (only pages
 * the CPU already maps); `sync` adds IB_UVERBS_ADVISE_MR_FLAG_FLUSH.
 */
export interface PrefetchRequest {
  readonly advice: 'write' | 'read' | 'no-fault';
  readonly sync: boolean;
}

/** A work request's outcome and its latency in virtual time. */
export interface Measurement {
  readonly status: IbWcStatus;
  /** From ibv_post_send() to the completion being polled, ns. */
  readonly ns: number;
  /** Virtual time of the post and of the completion, ns. */
  readonly start: number;
  readonly end: number;
}

/** Swap traffic so far: pages written out and read back (pswpout, pswpin). */
export interface SwapTraffic {
  readonly outs: number;
  readonly ins: number;
}

/** Trace events recorded by {@link BenchWorld.record}, in emission order, until `stop()`. */
export interface EventRecorder<K extends keyof TraceEventMap> {
  readonly events: readonly TraceEventOf<K>[];
  /** How many events of `type` were recorded. */
  count(type: K, where?: (e: TraceEventOf<K>) => boolean): number;
  stop(): void;
}

/** Server MR rights: the peer may read and write it. */
export const SERVER_ACCESS = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE | IB_ACCESS_REMOTE_READ;
/** Client (source/sink) MR rights. */
export const CLIENT_ACCESS = IB_ACCESS_LOCAL_WRITE;

/** EINVAL unless `bytes` is a positive multiple of 4 KiB no larger than `max`. */
export function checkBytes(what: string, bytes: unknown, max = 2 ** 40): number {
  if (
    typeof bytes !== 'number' ||
    !Number.isSafeInteger(bytes) ||
    bytes <= 0 ||
    bytes % PAGE_SIZE !== 0 ||
    bytes > max
  )
    throw new Errno(
      'EINVAL',
      `${what} must be a positive multiple of 4096 bytes up to ${max}, got ${String(bytes)}`,
    );
  return bytes;
}

/** EINVAL unless `enc` is an RNR timer encoding, 0–31. */
export function checkRnrTimer(enc: unknown, what = 'min_rnr_timer'): number {
  if (typeof enc !== 'number' || !Number.isInteger(enc) || RNR_TIMER_NS[enc] === undefined)
    throw new Errno(
      'EINVAL',
      `${what} must be an RNR timer encoding 0-31 (IBA table 45), got ${String(enc)}`,
    );
  return enc;
}

/** EINVAL unless `n` is an rnr_retry count, 0–7. */
export function checkRnrRetry(n: unknown, what = 'rnr_retry'): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 7)
    throw new Errno('EINVAL', `${what} must be an integer 0-7 (7: for ever), got ${String(n)}`);
  return n;
}

/**
 * A measurement world being run. Its methods are simulated-thread code (`yield*` them from
 * the body given to {@link runBench}).
 */
export class BenchWorld {
  readonly k: Kernel;
  readonly server: BenchSide;
  readonly client: BenchSide;
  private readonly buffers: BenchBuffer[] = [];
  private nextWrId = 1;

  constructor(k: Kernel, server: BenchSide, client: BenchSide) {
    this.k = k;
    this.server = server;
    this.client = client;
  }

  /** The running task's virtual clock, ns (ahead of `kernel.now` after a charge). */
  get now(): number {
    return current().time;
  }

  /**
   * mmap(2) of `bytes` of private anonymous memory in `side`'s process; with `touch`, every
   * page is written once by the CPU first (MAP_POPULATE for write), as an application that
   * initialises its buffer.
   */
  *map(side: BenchSide, bytes: number, options: { touch?: boolean } = {}): Co<number> {
    checkBytes('buffer size', bytes);
    const mm = side.proc.mm!;
    const addr = yield* mmap(mm, {
      len: bytes,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    if (options.touch === true) yield* this.cpuTouch(side, addr, bytes);
    return addr;
  }

  /**
   * The CPU writes every page of [addr, addr + bytes) of `side` once (a write fault per page
   * not yet writable), as an application filling its buffer.
   */
  *cpuTouch(side: BenchSide, addr: number, bytes: number): Co {
    yield* populate(side.proc.mm!, addr, checkBytes('touched range', bytes), true);
  }

  /**
   * ibv_reg_mr() of [addr, addr + bytes) of `side` (ib_umem_get for `pinned`, with
   * IBV_ACCESS_ON_DEMAND for `odp`); the server's rights by default. Throws the
   * registration's Errno (ENOMEM when pinning fails, ...).
   */
  *register(
    side: BenchSide,
    addr: number,
    bytes: number,
    kind: MrKind,
    access = side.name === 'server' ? SERVER_ACCESS : CLIENT_ACCESS,
  ): Co<BenchBuffer> {
    const flags = kind === 'odp' ? access | IB_ACCESS_ON_DEMAND : access;
    const mr = yield* ibRegMr(side.proc, side.ep.pd, addr, bytes, flags);
    const buf: BenchBuffer = { side, addr, bytes, kind, mr };
    this.buffers.push(buf);
    return buf;
  }

  /** {@link register}, with the Errno returned instead of thrown. */
  *tryRegister(
    side: BenchSide,
    addr: number,
    bytes: number,
    kind: MrKind,
    access?: number,
  ): Co<BenchBuffer | Errno> {
    try {
      return yield* this.register(side, addr, bytes, kind, access);
    } catch (e) {
      if (isErrno(e)) return e;
      throw e;
    }
  }

  /** {@link map} then {@link register}. */
  *buffer(
    side: BenchSide,
    bytes: number,
    kind: MrKind,
    options: { touch?: boolean } = {},
  ): Co<BenchBuffer> {
    const addr = yield* this.map(side, bytes, options);
    return yield* this.register(side, addr, bytes, kind);
  }

  /**
   * ibv_advise_mr() over [offset, offset + len) of an ODP buffer. Returns the virtual time the
   * call took (a synchronous prefetch returns once the translations are in the HCA; an
   * asynchronous one only queues the work).
   */
  *prefetch(
    buf: BenchBuffer,
    req: PrefetchRequest,
    offset = 0,
    len = buf.bytes - offset,
  ): Co<number> {
    const advice =
      req.advice === 'write'
        ? IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE
        : req.advice === 'read'
          ? IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH
          : IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT;
    const t0 = this.now;
    yield* ibAdviseMr(buf.side.ep.pd, advice, req.sync ? IB_UVERBS_ADVISE_MR_FLAG_FLUSH : 0, [
      { addr: buf.addr + offset, length: len, lkey: buf.mr.lkey },
    ]);
    return this.now - t0;
  }

  /**
   * Posts `wr` on `side`'s QP and waits for its completion (ibv_post_send, then the CQ): the
   * status and the virtual time in between. Only one WR is outstanding at a time.
   */
  *post(side: BenchSide, wr: Omit<IbSendWr, 'wrId'>): Co<Measurement> {
    const start = this.now;
    const wc = yield* postAndWait(side.qp, { ...wr, wrId: this.nextWrId++ });
    const end = this.now;
    return { status: wc.status, ns: end - start, start, end };
  }

  /**
   * An RDMA WRITE of `len` bytes from `src` (at `srcOffset`) into `dst` (at `dstOffset`),
   * posted by `src`'s side, measured.
   */
  *write(
    src: BenchBuffer,
    dst: BenchBuffer,
    len: number,
    offsets: { src?: number; dst?: number } = {},
  ): Co<Measurement> {
    return yield* this.rdma('RDMA_WRITE', src, dst, len, offsets);
  }

  /** An RDMA READ of `len` bytes of `remote` into `local`, posted by `local`'s side, measured. */
  *read(
    local: BenchBuffer,
    remote: BenchBuffer,
    len: number,
    offsets: { local?: number; remote?: number } = {},
  ): Co<Measurement> {
    return yield* this.rdma('RDMA_READ', local, remote, len, {
      src: offsets.local ?? 0,
      dst: offsets.remote ?? 0,
    });
  }

  private *rdma(
    opcode: 'RDMA_WRITE' | 'RDMA_READ',
    local: BenchBuffer,
    remote: BenchBuffer,
    len: number,
    offsets: { src?: number; dst?: number },
  ): Co<Measurement> {
    const lo = offsets.src ?? 0;
    const ro = offsets.dst ?? 0;
    if (local.side === remote.side)
      throw new Errno('EINVAL', 'an RDMA operation goes from one side to the other');
    if (lo + len > local.bytes || ro + len > remote.bytes || len < 0)
      throw new Errno('EINVAL', `RDMA of ${len} bytes leaves a buffer`);
    return yield* this.post(local.side, {
      opcode,
      sgList: [{ addr: local.addr + lo, length: len, lkey: local.mr.lkey }],
      remoteAddr: remote.addr + ro,
      rkey: remote.mr.rkey,
    });
  }

  /** A copy of `side`'s HCA counters (mlx5's odp_stats names). */
  stats(side: BenchSide): OdpStats {
    return { ...side.dev.stats };
  }

  /**
   * Pages written to swap and read back so far: the server's machine, the only one with swap.
   * The cost model charges `swap.out` once per pageout and `swap.in` once per swap-in.
   */
  swapTraffic(): SwapTraffic {
    const tally = this.k.costs.tally;
    return { outs: tally.get('swap.out')?.count ?? 0, ins: tally.get('swap.in')?.count ?? 0 };
  }

  /**
   * Records the trace events of `types` from now on, each with its header (virtual `time`,
   * task, step). The trace is on while any recorder listens, which slows a large run.
   */
  record<K extends keyof TraceEventMap>(types: readonly K[]): EventRecorder<K> {
    const wanted = new Set<string>(types);
    const events: TraceEventOf<K>[] = [];
    const stop = this.k.trace.subscribe((e) => {
      if (wanted.has(e.type)) events.push(e as TraceEventOf<K>);
    });
    return {
      events,
      count: (type, where) =>
        events.filter((e) => e.type === type && (where === undefined || where(e))).length,
      stop,
    };
  }

  /**
   * What the run charged so far, by cost name: how often and the virtual time in all (a copy:
   * the difference of two, {@link chargedDelta}, is a phase's breakdown).
   */
  charged(): Partial<Record<CostName, CostTally>> {
    const out: Partial<Record<CostName, CostTally>> = {};
    for (const [name, t] of this.k.costs.tally) out[name] = { count: t.count, ns: t.ns };
    return out;
  }

  /** ibv_dereg_mr() of every buffer still registered, then close and exit (the world's end). */
  *teardown(): Co {
    for (const b of this.buffers.splice(0)) yield* ibDeregMr(b.mr);
    for (const side of [this.client, this.server]) yield* ibUverbsClose(side.ep.file);
    for (const side of [this.client, this.server]) yield* exitMm(side.proc);
  }

  /** ibv_dereg_mr() of one buffer. */
  *deregister(buf: BenchBuffer): Co {
    const i = this.buffers.indexOf(buf);
    if (i < 0) throw new Errno('EINVAL', 'buffer is not registered');
    this.buffers.splice(i, 1);
    yield* ibDeregMr(buf.mr);
  }
}

/** The costs charged between two {@link BenchWorld.charged} snapshots (those charged at all). */
export function chargedDelta(
  before: Partial<Record<CostName, CostTally>>,
  after: Partial<Record<CostName, CostTally>>,
): Partial<Record<CostName, CostTally>> {
  const out: Partial<Record<CostName, CostTally>> = {};
  for (const name of Object.keys(after) as CostName[]) {
    const a = after[name]!;
    const b = before[name] ?? { count: 0, ns: 0 };
    if (a.count > b.count) out[name] = { count: a.count - b.count, ns: a.ns - b.ns };
  }
  return out;
}

/** Differences of two counter snapshots, field by field (after − before). */
export function statsDelta(before: OdpStats, after: OdpStats): OdpStats {
  const out = { ...after };
  for (const key of Object.keys(out) as (keyof OdpStats)[]) out[key] = after[key] - before[key];
  return out;
}

/**
 * A duration for a table: µs with one decimal below 1 ms, whole µs with thousands separators
 * above (locale-independent).
 */
export function formatMicros(ns: number): string {
  const us = ns / 1000;
  if (us < 1000) return us.toFixed(1);
  return String(Math.round(us)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function frames(what: string, bytes: number): number {
  return checkBytes(what, bytes) / PAGE_SIZE;
}

/**
 * Builds a world, runs `body` in it (in a simulated task, under the timed strategy with the
 * options' seed and cost overrides), tears it down and returns what `body` returned. An Errno
 * `body` throws comes back as is; a kernel bug or a runaway run as an Error. EINVAL for bad
 * options.
 */
export function runBench<T>(options: BenchOptions, body: (w: BenchWorld) => Co<T>): T {
  const ram = frames('ramBytes', options.ramBytes ?? 256 * MiB);
  const swap = options.swapBytes === undefined ? 0 : checkSwap(options.swapBytes);
  const clientRam = frames('clientRamBytes', options.clientRamBytes ?? 64 * MiB);
  const minRnrTimer = checkRnrTimer(options.minRnrTimer ?? 1);
  const rnrRetry = checkRnrRetry(options.rnrRetry ?? 7);
  const odpDesign = options.odpDesign ?? 2020;
  const seed = options.seed ?? 1;
  if (!Number.isSafeInteger(seed))
    throw new Errno('EINVAL', `seed must be an integer, got ${seed}`);
  const k = new Kernel({
    strategy: new TimedStrategy(),
    seed,
    maxSteps: options.maxSteps ?? 50_000_000,
    ...(options.costs === undefined ? {} : { costs: options.costs }),
  });
  const legacyNotifierCore = odpDesign !== 2020;
  const sm = new Machine(k, {
    frames: ram,
    swapSlots: swap,
    reclaimOnPressure: options.reclaim ?? true,
    legacyNotifierCore,
  });
  const cm = new Machine(k, { frames: clientRam, swapSlots: 0, legacyNotifierCore });
  // Neither process is held back by RLIMIT_MEMLOCK: a pinned registration fails only for want
  // of memory, which is what the studies compare.
  const sproc = createProcess(sm, { capIpcLock: true });
  const cproc = createProcess(cm, { capIpcLock: true });
  const sdev = new Mlx5Device(sm, { name: 'mlx5_1', odpDesign });
  const cdev = new Mlx5Device(cm, { name: 'mlx5_0', odpDesign });
  let out: { value: T } | { error: unknown } | null = null;
  k.spawn('bench', function* () {
    const sep = yield* openEndpoint(sdev, sproc);
    const cep = yield* openEndpoint(cdev, cproc);
    const [cqp, sqp] = yield* connectedPair(cep, sep, { minRnrTimer, rnrRetry });
    const server: BenchSide = {
      name: 'server',
      machine: sm,
      proc: sproc,
      dev: sdev,
      ep: sep,
      qp: sqp,
    };
    const client: BenchSide = {
      name: 'client',
      machine: cm,
      proc: cproc,
      dev: cdev,
      ep: cep,
      qp: cqp,
    };
    const w = new BenchWorld(k, server, client);
    try {
      out = { value: yield* body(w) };
    } catch (e) {
      if (!isErrno(e)) throw e;
      out = { error: e };
    }
    yield* w.teardown();
  });
  const r = k.run();
  if (!r.ok) {
    const why = r.bug?.message ?? (r.stoppedAtLimit ? 'step limit' : 'unknown');
    throw new Error(`rdma-bench: the world failed: ${why}`);
  }
  const o = out as { value: T } | { error: unknown } | null;
  if (o === null) throw new Error('rdma-bench: the body did not finish');
  if ('error' in o) throw o.error;
  return o.value;
}

function checkSwap(bytes: unknown): number {
  if (bytes === 0) return 0;
  return frames('swapBytes', bytes as number);
}
