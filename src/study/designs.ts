/**
 * `odpsim study designs`: one workload run on each ODP design — the 2014 one, the interim one
 * (4.20–5.4), today's (5.10+) and, for scale, the 2014 design with a linear list instead of its
 * interval tree — at a given number of MRs, and what each costs.
 *
 * The workload: a server maps one page per MR and registers one ODP MR over each; a client
 * makes RDMA WRITEs to pages chosen at random while the server discards pages chosen at random
 * (MADV_DONTNEED), each discard an invalidation the design must deliver. Half the choices
 * fall in a hot set of four MRs, where faults and invalidations collide. Everything is
 * measured from the trace of one run in virtual time.
 */
import { installOracles } from '../check/oracles/install.ts';
import type { OdpDesign } from '../drivers/rdma/core/device.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_WRITE,
} from '../drivers/rdma/core/ib-verbs.ts';
import type { IbMr } from '../drivers/rdma/core/objects.ts';
import { ibUverbsClose } from '../drivers/rdma/core/uverbs.ts';
import { ibDeregMr, ibRegMr } from '../drivers/rdma/core/verbs.ts';
import '../drivers/rdma/events.ts';
import { Mlx5Device } from '../drivers/rdma/hw/mlx5/main.ts';
import { join, sleep } from '../kernel/context.ts';
import { Kernel } from '../kernel/kernel.ts';
import { RandomStrategy } from '../kernel/strategies/random.ts';
import { TimedStrategy } from '../kernel/strategies/timed.ts';
import type { Strategy } from '../kernel/strategy.ts';
import type { TraceEvent } from '../kernel/trace.ts';
import { Errno } from '../lib/errors.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../mm/constants.ts';
import { cpuWriteU32 } from '../mm/cpu-access.ts';
import { Machine } from '../mm/machine.ts';
import { madvise } from '../mm/madvise.ts';
import { mmap } from '../mm/mmap.ts';
import { createProcess, exitMm } from '../mm/process.ts';
import { connectedPair, openEndpoint, postAndWait } from '../scenarios/rdma-kit.ts';
import type { StudyOptions } from './study.ts';

/** The designs compared: the three of Linux, and the 2014 one dispatching through a list. */
export type StudyDesign = OdpDesign | 'list';
export const STUDY_DESIGNS: readonly StudyDesign[] = [2014, 2018, 2020, 'list'];

/** RDMA WRITEs the client makes, and pages the server discards meanwhile. */
export const STUDY_WRITES = 64;
export const STUDY_DISCARDS = 32;
/** MRs of the hot set. */
const HOT = 4;
/** Between two discards, ns (the client's WRITEs interleave with them). */
const DISCARD_GAP_NS = 20_000;

/**
 * The tracking state a design keeps, in bytes, from the x86-64 layouts of its structures:
 * per MR (2014 and interim: the umem's node in the context's interval tree; today: the
 * umem's mmu_interval_notifier; list: a list_head) and per context or mm.
 */
export const TRACKING_BYTES: Readonly<Record<string, { perMr: number; fixed: number }>> = {
  '2014': { perMr: 32, fixed: 120 },
  '2018': { perMr: 32, fixed: 140 },
  '2020': { perMr: 88, fixed: 104 },
  list: { perMr: 16, fixed: 100 },
};

/** What one design cost on the workload. */
export interface DesignRow {
  readonly design: string;
  readonly mrs: number;
  /** Device fault passes ('dev-fault'). */
  readonly deviceFaults: number;
  /** Invalidations the notifier delivered to a umem's driver. */
  readonly invalidationsDelivered: number;
  /**
   * Tracking entries examined to find them: the matches plus a tree descent (log2 of the
   * entries) per invalidation for the tree designs, every entry for the list.
   */
  readonly entriesExamined: number;
  /** Fault passes that started over (the sequence moved, a busy range, EAGAIN). */
  readonly retries: number;
  /** Pages those passes had faulted in for nothing. */
  readonly wastedPages: number;
  /** Virtual time umem_rwsem and umem_mutex were held, summed over holders, ns. */
  readonly lockHoldNs: number;
  /** Virtual time of the whole run, ns. */
  readonly virtualTimeNs: number;
  readonly trackingBytes: number;
}

/**
 * Runs the workload on `design` with `mrs` MRs, twice: in virtual-time order (every column but
 * the collisions), and under the random strategy (the study's seed), where faults and invalidations
 * interleave at every step — the retries and wasted pages come from that run (in virtual time
 * a fault's CPU work takes none, so nothing ever falls inside its window). EINVAL for a count
 * out of [1, 100,000].
 */
export function studyDesign(design: StudyDesign, mrs: number, opts: StudyOptions = {}): DesignRow {
  if (!Number.isSafeInteger(mrs) || mrs < 1 || mrs > 100_000)
    throw new Errno('EINVAL', `study designs: MR count ${String(mrs)} is not in [1, 100000]`);
  const seed = opts.seed ?? 1;
  const timed = runWorkload(design, mrs, new TimedStrategy(), seed, opts);
  const random = runWorkload(design, mrs, new RandomStrategy(seed), seed, opts);
  return { ...timed, retries: random.retries, wastedPages: random.wastedPages };
}

function runWorkload(
  design: StudyDesign,
  mrs: number,
  strategy: Strategy,
  seed: number,
  opts: StudyOptions,
): DesignRow {
  const k = new Kernel({
    strategy,
    seed,
    ...(opts.costs === undefined ? {} : { costs: opts.costs }),
  });
  const odpDesign: OdpDesign = design === 'list' ? 2014 : design;
  const machine = new Machine(k, { frames: mrs + 96, legacyNotifierCore: odpDesign !== 2020 });
  installOracles(k, machine);
  const meter = new Meter(k, mrs, design);
  const server = createProcess(machine);
  const client = createProcess(machine);
  const sdev = new Mlx5Device(machine, { name: 'mlx5_1', odpDesign });
  const cdev = new Mlx5Device(machine, { name: 'mlx5_0', odpDesign });
  k.spawn('server', function* () {
    const smm = server.mm!;
    const rw = PROT_READ | PROT_WRITE;
    const flags = MAP_PRIVATE | MAP_ANONYMOUS;
    const base = yield* mmap(smm, { len: mrs * PAGE_SIZE, prot: rw, flags });
    const sep = yield* openEndpoint(sdev, server);
    sep.ctx.odp2014.linearDispatch = design === 'list';
    const access = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE | IB_ACCESS_ON_DEMAND;
    const mrsList: IbMr[] = [];
    for (let i = 0; i < mrs; i++)
      mrsList.push(yield* ibRegMr(server, sep.pd, base + i * PAGE_SIZE, PAGE_SIZE, access));
    const cbuf = yield* mmap(client.mm!, { len: PAGE_SIZE, prot: rw, flags });
    yield* cpuWriteU32(client.mm!, cbuf, 1);
    const cep = yield* openEndpoint(cdev, client);
    const cmr = yield* ibRegMr(client, cep.pd, cbuf, PAGE_SIZE, IB_ACCESS_LOCAL_WRITE);
    const [c] = yield* connectedPair(cep, sep, { minRnrTimer: 1 });
    // Half the accesses go to a hot set of four MRs, where WRITEs and discards collide.
    const pick = () =>
      k.prng.below(2) === 0 ? k.prng.below(Math.min(mrs, HOT)) : k.prng.below(mrs);
    meter.start();
    const writer = k.spawn('client', function* () {
      for (let i = 0; i < STUDY_WRITES; i++) {
        const mr = mrsList[pick()]!;
        const wc = yield* postAndWait(c, {
          wrId: i,
          opcode: 'RDMA_WRITE',
          sgList: [{ addr: cbuf, length: 4, lkey: cmr.lkey }],
          remoteAddr: mr.iova,
          rkey: mr.rkey,
        });
        if (wc.status !== 'SUCCESS') k.bug('data', `study write ${i}: ${wc.status}`);
      }
    });
    for (let i = 0; i < STUDY_DISCARDS; i++) {
      yield* sleep(DISCARD_GAP_NS);
      yield* madvise(smm, base + pick() * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED);
    }
    yield* join(writer);
    meter.stop();
    yield* ibDeregMr(cmr);
    for (const mr of mrsList) yield* ibDeregMr(mr);
    yield* ibUverbsClose(cep.file);
    yield* ibUverbsClose(sep.file);
    yield* exitMm(client);
    yield* exitMm(server);
  });
  const r = k.run();
  if (!r.ok) throw new Error(`study designs: ${design} at ${mrs} MRs failed: ${r.bug?.message}`);
  const bytes = TRACKING_BYTES[String(design)]!;
  return {
    ...meter.result(),
    design: String(design),
    mrs,
    trackingBytes: bytes.fixed + bytes.perMr * mrs,
  };
}

/** Counts the workload's events between start() and stop() (registration and teardown excluded). */
class Meter {
  private on = false;
  private t0 = 0;
  private t1 = 0;
  private faults = 0;
  private delivered = 0;
  private invalidations = 0;
  private retries = 0;
  private wasted = 0;
  private lockNs = 0;
  private readonly held = new Map<string, number>();
  private readonly lastFaultPages = new Map<number, number>();

  constructor(
    private readonly k: Kernel,
    private readonly mrs: number,
    private readonly design: StudyDesign,
  ) {
    k.trace.subscribe(this.onEvent);
  }

  start(): void {
    this.on = true;
    this.t0 = this.k.now;
  }

  stop(): void {
    this.on = false;
    this.t1 = this.k.now;
  }

  result(): Omit<DesignRow, 'design' | 'mrs' | 'trackingBytes'> {
    const descent = this.design === 'list' ? 0 : Math.ceil(Math.log2(this.mrs + 1));
    const perInvalidation = this.design === 'list' ? this.mrs : descent;
    return {
      deviceFaults: this.faults,
      invalidationsDelivered: this.delivered,
      entriesExamined: this.delivered + this.invalidations * perInvalidation,
      retries: this.retries,
      wastedPages: this.wasted,
      lockHoldNs: this.lockNs,
      virtualTimeNs: this.t1 - this.t0,
    };
  }

  private task(): number {
    return this.k.current?.id ?? -1;
  }

  private readonly onEvent = (e: TraceEvent): void => {
    if (!this.on) return;
    switch (e.type) {
      case 'dev-fault':
        // A fault's retries happen in the task that made it.
        this.faults++;
        this.lastFaultPages.set(this.task(), Math.ceil((e.end - e.start) / PAGE_SIZE));
        return;
      case 'dev-retry':
        this.retries++;
        this.wasted += this.lastFaultPages.get(this.task()) ?? 0;
        return;
      case 'mmu-start':
        this.invalidations++;
        return;
      case 'odp-invalidate':
      case 'itree-invalidate':
        this.delivered++;
        return;
      case 'lock-acquire':
        if (isStudied(e.lock)) this.held.set(`${this.task()} ${e.lock}`, this.k.now);
        return;
      case 'lock-release': {
        const key = `${this.task()} ${e.lock}`;
        const since = this.held.get(key);
        if (since === undefined) return;
        this.held.delete(key);
        this.lockNs += this.k.now - since;
        return;
      }
      default:
    }
  };
}

function isStudied(lock: string): boolean {
  return lock.endsWith('.umem_rwsem') || lock.endsWith('.umem_mutex');
}
