import { installOracles } from '../check/oracles/install.ts';
import { checkLeaks } from '../check/oracles/leaks.ts';
import { registerOracle } from '../check/oracles/registry.ts';
import type { IbDevice } from '../drivers/rdma/core/device.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_ATOMIC,
  IB_ACCESS_REMOTE_READ,
  IB_ACCESS_REMOTE_WRITE,
  IB_ODP_SUPPORT_IMPLICIT,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
  IB_UVERBS_ADVISE_MR_FLAG_FLUSH,
  SIZE_MAX,
} from '../drivers/rdma/core/ib-verbs.ts';
import type { IbMr } from '../drivers/rdma/core/objects.ts';
import { ibUverbsClose } from '../drivers/rdma/core/uverbs.ts';
import { ibAdviseMr, ibQueryDeviceEx, ibRegMr } from '../drivers/rdma/core/verbs.ts';
import { Mlx5Device, type OdpDesign } from '../drivers/rdma/hw/mlx5/main.ts';
import { RxeDevice } from '../drivers/rdma/sw/rxe/main.ts';
import { join } from '../kernel/context.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Completion } from '../kernel/sync/completion.ts';
import type { Co, Task } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../mm/constants.ts';
import { cpuRead, cpuWrite } from '../mm/cpu-access.ts';
import { Machine } from '../mm/machine.ts';
import { madvise } from '../mm/madvise.ts';
import { mmdrop, mmgrab } from '../mm/mm-refs.ts';
import { mmap } from '../mm/mmap.ts';
import { oomReap } from '../mm/oom-reaper.ts';
import { createProcess, exitMm, type Process } from '../mm/process.ts';
import { PageValues, pageOf } from './page-values.ts';
import { type Endpoint, openEndpoint, type QpEnd } from './rdma-kit.ts';
import { clientLife } from './rdma-odp-client.ts';
import { receiver, serverMutators } from './rdma-odp-mutators.ts';
import type { Scenario, ScenarioParams } from './scenario.ts';

const RW = PROT_READ | PROT_WRITE;
/** Virtual time between two operations of a thread, ns. */
export const THINK_NS = 20_000;
/** Every remote right on demand. */
const ODP_ALL =
  IB_ACCESS_LOCAL_WRITE |
  IB_ACCESS_REMOTE_READ |
  IB_ACCESS_REMOTE_WRITE |
  IB_ACCESS_REMOTE_ATOMIC |
  IB_ACCESS_ON_DEMAND;
/** Pages of the server's receive buffer (one SEND message). */
export const RECV_PAGES = 2;
/** The value of every int of the client's read-only page, sent as the second SGE of a SEND. */
export const RO_VALUE = 777;

/** What the server publishes to the client (its QPs, keys and addresses) and the world's state. */
export interface RdmaOdpWorld {
  readonly k: Kernel;
  readonly machine: Machine;
  readonly pages: number;
  readonly quarter: number;
  readonly ops: number;
  readonly rounds: number;
  readonly values: PageValues;
  /** The server registered its MRs; then the client connected and the world may start. */
  readonly serverReady: Completion;
  readonly ready: Completion;
  server: Endpoint | null;
  client: Endpoint | null;
  /** The server's buffer and MRs: all of it (writable), Q1 read-only, the receive buffer. */
  base: number;
  mr: IbMr | null;
  roMr: IbMr | null;
  recvBase: number;
  recvMr: IbMr | null;
  /** The second buffer and its MR, registered after the mutators, racing one invalidation. */
  readonly secondMr: boolean;
  base2: number;
  mr2: IbMr | null;
  readonly mr2Ready: Completion;
  /** Main and probe connections: [client end, server end]. */
  main: [QpEnd, QpEnd] | null;
  probe: [QpEnd, QpEnd] | null;
  /** Q3 was unmapped (munmap returned), and the completion that says so. */
  unmapped: boolean;
  readonly unmapDone: Completion;
  /** The client posted all its operations and checked them. */
  clientDone: boolean;
  /** Fetch-and-adds and compare-and-swaps the client completed, and SENDs it made. */
  faa: number;
  cas: number;
  sent: number[];
  checks: number;
}

/** Value written by client operation `i`. */
export const written = (i: number) => 10_000 + i;
/** Initial value of server page `p` (MR2's pages follow the buffer's). */
export const initial = (p: number) => p + 1;

/**
 * `rdma-odp`: a client process drives RDMA READ, WRITE, fetch-and-add, compare-and-swap and
 * two-SGE SENDs (one SGE through a read-only MR) over RC into a server process's ODP MRs, while
 * the server's threads munmap a quarter of the buffer (probed through a second QP, which must
 * then see a remote access error), mprotect another quarter read-only and back (read through a
 * read-only MR), fork (the child writes its copy), discard a quarter with DONTNEED, reclaim
 * under memory pressure, and register a second ODP MR mid-run. Every byte read is checked
 * against the values its writers put there, atomics against their count.
 */
export const rdmaOdpScenario: Scenario = {
  name: 'rdma-odp',
  description:
    "RDMA READ/WRITE/atomics/SEND into a server's ODP MRs while it munmaps, mprotects, forks, madvises and reclaims",
  params: [
    {
      name: 'design',
      description:
        'ODP design: 2014 (per-context umem tree, notifier count, deferred activation; 3.19-4.19), 2018 (range_start holds umem_rwsem until range_end; 4.20-5.4) or 2020 (an interval notifier per umem, hmm_range_fault; 5.10 and later)',
      default: 2014,
      min: 2014,
      max: 2020,
    },
    {
      name: 'pages',
      description: "pages of the server's buffer, in quarters (the last takes any remainder)",
      default: 8,
      min: 8,
      max: 1 << 16,
    },
    {
      name: 'ops',
      description:
        "RDMA operations the client makes on the main connection (the probe's reads, and with mr2=1 4 operations on the second MR, come on top)",
      default: 24,
      min: 0,
      max: 100_000,
    },
    {
      name: 'rounds',
      description:
        'mprotect rounds of the server (the second quarter read-only and back); its kswapd thread makes 2×rounds reclaim passes of a quarter each',
      default: 1,
      min: 0,
      max: 1000,
    },
    {
      name: 'pressure',
      description:
        "sizes the server's machine: pressure% of the pages + pages/4 + 8 pages the processes map, rounded up; the run never uses all of them at once, so faults reclaim only well below 100: at the defaults below 78, at pages=64 below 94 (at the defaults the kswapd thread also reclaims at any value with rounds ≥ 1; at pages=64 and pressure ≥ 94 its passes find every page recently used)",
      default: 75,
      min: 40,
      max: 400,
    },
    {
      name: 'mr2',
      description:
        '1: afterwards the server registers a second ODP MR while one invalidation runs, and the client uses it',
      default: 1,
      min: 0,
      max: 1,
    },
    {
      name: 'machines',
      description: '1: both processes on one machine; 2: the client on a machine of its own',
      default: 1,
      min: 1,
      max: 2,
    },
    {
      name: 'sw',
      description:
        '1: both processes use the software RDMA device (rxe: copies with the CPU, faults synchronously) instead of the mlx5-like HCA; needs design=2020',
      default: 0,
      min: 0,
      max: 1,
    },
    {
      name: 'teardown',
      description:
        "how the server ends: 0 deregisters, closes and exits; 1 the same raced by the OOM reaper; 2 exits with its MRs registered (exit closes the file). Under design=2014 that exit reports the mm leaked: the release unregisters the notifier only while the owner's mm lives, so the mm_count its registration took is never dropped, as 3.19-4.19 read; the interim design unregisters from the registered mm whatever the owner (mmu_notifier_unregister_no_release)",
      default: 0,
      min: 0,
      max: 2,
    },
  ],
  check(p: ScenarioParams): void {
    if (p.design !== 2014 && p.design !== 2018 && p.design !== 2020)
      throw new Errno(
        'EINVAL',
        `parameter design of scenario rdma-odp must be 2014, 2018 or 2020, got ${p.design}`,
      );
    // rxe has ODP only in kernels of the interval-notifier (2020) design.
    if (p.sw === 1 && p.design !== 2020)
      throw new Errno(
        'EINVAL',
        `parameter sw of scenario rdma-odp: sw=1 needs design=2020, got design=${p.design}`,
      );
  },
  build(k: Kernel, p: ScenarioParams): void {
    buildRdmaOdp(k, p);
  },
};

function buildRdmaOdp(k: Kernel, p: ScenarioParams): void {
  const pages = p.pages!;
  const quarter = Math.floor(pages / 4);
  // Every page the processes map: the buffer, the receive buffer, MR2's and the client's 6
  // (counted even when the client has a machine of its own).
  const mapped = pages + RECV_PAGES + quarter + 6;
  const frames = Math.ceil((mapped * p.pressure!) / 100);
  // The 2014 and interim designs ran on the notifier core of their time.
  const legacyNotifierCore = p.design !== 2020;
  const odpDesign = p.design as OdpDesign;
  const machine = new Machine(k, { frames, legacyNotifierCore });
  installOracles(k, machine);
  const values = new PageValues(k, pages + quarter, initial);
  values.unmap(0); // the atomics page, checked word by word
  const w: RdmaOdpWorld = {
    k,
    machine,
    pages,
    quarter,
    ops: p.ops!,
    rounds: p.rounds!,
    values,
    serverReady: new Completion('server-ready'),
    ready: new Completion('ready'),
    server: null,
    client: null,
    base: 0,
    mr: null,
    roMr: null,
    recvBase: 0,
    recvMr: null,
    secondMr: p.mr2 === 1,
    base2: 0,
    mr2: null,
    mr2Ready: new Completion('mr2-ready'),
    main: null,
    probe: null,
    unmapped: false,
    unmapDone: new Completion('unmapped'),
    clientDone: false,
    faa: 0,
    cas: 0,
    sent: [],
    checks: 0,
  };
  registerOracle(k, {
    name: 'rdma',
    description:
      'operations on mapped memory complete and return what was written; on unmapped memory they fail with an access error',
    rules: ['rdma-completion'],
    checks: () => w.checks,
  });
  // A second machine for the client has room enough: the pressure is the server's.
  const remote = p.machines === 2 ? new Machine(k, { frames: 64, legacyNotifierCore }) : machine;
  if (remote !== machine) k.onQuiescence(() => checkLeaks(remote));
  const device = (m: Machine, i: number): IbDevice =>
    p.sw === 1
      ? new RxeDevice(m, { name: `rxe${i}` })
      : new Mlx5Device(m, { name: `mlx5_${i}`, odpDesign });
  const serverDev = device(machine, 1);
  const clientDev = device(remote, 0);
  const server = createProcess(machine);
  const client = createProcess(remote);
  const clientTask = k.spawn('client', () => clientLife(w, client, clientDev));
  k.spawn('server', () => serverLife(w, server, serverDev, p.teardown!, clientTask));
}

/** The server: maps and fills its buffers, registers, connects, runs its threads, checks, exits. */
function* serverLife(
  w: RdmaOdpWorld,
  proc: Process,
  dev: IbDevice,
  teardown: number,
  clientTask: Task,
): Co {
  const mm = proc.mm!;
  const map = (pages: number) =>
    mmap(mm, { len: pages * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  w.base = yield* map(w.pages);
  w.recvBase = yield* map(RECV_PAGES);
  w.base2 = yield* map(w.quarter);
  for (let p = 1; p < w.pages; p++) yield* cpuWrite(mm, w.base + p * PAGE_SIZE, pageOf(initial(p)));
  for (let i = 0; i < w.quarter; i++)
    yield* cpuWrite(mm, w.base2 + i * PAGE_SIZE, pageOf(initial(w.pages + i)));
  const ep = yield* openEndpoint(dev, proc);
  w.server = ep;
  // A device with implicit ODP serves the buffer through an MR over the whole address space:
  // the server's munmaps, discards and reclaim then empty and recreate its 1 GiB children.
  w.mr =
    (ibQueryDeviceEx(dev).odpCaps.generalCaps & IB_ODP_SUPPORT_IMPLICIT) !== 0
      ? yield* ibRegMr(proc, ep.pd, 0, SIZE_MAX, ODP_ALL)
      : yield* ibRegMr(proc, ep.pd, w.base, w.pages * PAGE_SIZE, ODP_ALL);
  w.roMr = yield* ibRegMr(
    proc,
    ep.pd,
    w.base + w.quarter * PAGE_SIZE,
    w.quarter * PAGE_SIZE,
    IB_ACCESS_REMOTE_READ | IB_ACCESS_ON_DEMAND,
  );
  w.recvMr = yield* ibRegMr(
    proc,
    ep.pd,
    w.recvBase,
    RECV_PAGES * PAGE_SIZE,
    IB_ACCESS_LOCAL_WRITE | IB_ACCESS_ON_DEMAND,
  );
  w.serverReady.completeAll();
  yield* w.ready.wait();
  const receiving = w.k.spawn('receiver', () => receiver(w));
  for (const t of serverMutators(w, proc)) yield* join(t);
  if (w.secondMr) yield* registerSecond(w, proc);
  yield* join(clientTask);
  yield* join(receiving);
  yield* checkServer(w, proc);
  // The current design prefetches: the whole buffer, asynchronously, racing the teardown
  // (deregistration waits for the work's references).
  if (dev.ops.adviseMr !== undefined)
    yield* ibAdviseMr(ep.pd, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE, 0, [
      { addr: w.base, length: w.pages * PAGE_SIZE, lkey: w.mr!.lkey },
    ]);
  if (teardown === 2) {
    // Killed: exit_mm() first, then exit_files() closes the verbs file.
    yield* exitMm(proc);
    yield* ibUverbsClose(ep.file);
    return;
  }
  // The OOM killer picked the process: it holds the victim's mm_struct (mmgrab) for the reaper.
  if (teardown === 1) mmgrab(mm);
  const reaper =
    teardown === 1
      ? w.k.spawn('oom_reaper', function* () {
          yield* oomReap(mm);
          mmdrop(mm);
        })
      : null;
  yield* ibUverbsClose(ep.file);
  yield* exitMm(proc);
  if (reaper !== null) yield* join(reaper);
}

/**
 * The second ODP MR, registered while another thread discards a page (one invalidation of the
 * same mm in flight: a registration racing it must not leave the new umem inactive, O1).
 */
function* registerSecond(w: RdmaOdpWorld, proc: Process): Co {
  const mm = proc.mm!;
  const trim = w.k.spawn('trim', function* () {
    w.values.allow(2 * w.quarter, 0);
    yield* madvise(mm, w.base + 2 * w.quarter * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED);
  });
  w.mr2 = yield* ibRegMr(proc, w.server!.pd, w.base2, w.quarter * PAGE_SIZE, ODP_ALL);
  // The current design prefetches it (synchronously: mapped when the call returns).
  if (w.server!.device.ops.adviseMr !== undefined)
    yield* ibAdviseMr(
      w.server!.pd,
      IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
      IB_UVERBS_ADVISE_MR_FLAG_FLUSH,
      [{ addr: w.base2, length: w.quarter * PAGE_SIZE, lkey: w.mr2.lkey }],
    );
  yield* join(trim);
  w.mr2Ready.completeAll();
}

/** The server's final look at its memory: every page and both atomic words. */
function* checkServer(w: RdmaOdpWorld, proc: Process): Co {
  const mm = proc.mm!;
  for (let p = 1; p < w.pages; p++) {
    if (w.values.isUnmapped(p)) continue;
    w.values.check('server', p, yield* cpuRead(mm, w.base + p * PAGE_SIZE, PAGE_SIZE), 0);
  }
  for (let i = 0; i < w.quarter; i++)
    w.values.check(
      'server',
      w.pages + i,
      yield* cpuRead(mm, w.base2 + i * PAGE_SIZE, PAGE_SIZE),
      0,
    );
  const words = yield* cpuRead(mm, w.base, 16);
  const view = new DataView(words.buffer);
  const faa = Number(view.getBigUint64(0, true));
  const cas = Number(view.getBigUint64(8, true));
  w.checks += 2;
  if (faa !== w.faa || cas !== w.cas)
    w.k.bug(
      'rdma-completion',
      `the atomics page holds ${faa} and ${cas}, but the client completed ${w.faa} fetch-and-adds and ${w.cas} compare-and-swaps`,
    );
}
