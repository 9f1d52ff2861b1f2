import { observe } from '../check/observations.ts';
import { installOracles } from '../check/oracles/install.ts';
import { registerOracle } from '../check/oracles/registry.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_READ,
} from '../drivers/rdma/core/ib-verbs.ts';
import type { IbMr } from '../drivers/rdma/core/objects.ts';
import { ibUverbsClose } from '../drivers/rdma/core/uverbs.ts';
import { ibDeregMr, ibRegMr } from '../drivers/rdma/core/verbs.ts';
import { Mlx5Device } from '../drivers/rdma/hw/mlx5/main.ts';
import type { Kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { type Errno, isErrno } from '../lib/errors.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../mm/constants.ts';
import { cpuRead, cpuWriteU32 } from '../mm/cpu-access.ts';
import { Machine } from '../mm/machine.ts';
import { mmap } from '../mm/mmap.ts';
import { munmap } from '../mm/munmap.ts';
import { createProcess, exitMm, forkProcess, type Process } from '../mm/process.ts';
import { connectedPair, type Endpoint, openEndpoint, postAndWait, type QpEnd } from './rdma-kit.ts';
import type { Scenario, ScenarioParams } from './scenario.ts';

const RW = PROT_READ | PROT_WRITE;
const PINNED = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_READ;
const ODP = PINNED | IB_ACCESS_ON_DEMAND;

/**
 * `rdma-pinned-vs-odp`: what a user sees differ between a pinned MR and an ODP MR, each over a
 * page of the same process, read by a peer over RDMA:
 *
 * 1. munmap and mmap again at the same address, then write: the pinned MR still reaches the
 *    old page (it holds it), the ODP MR the new one;
 * 2. fork, then the parent writes: the ODP MR follows the parent; the pinned MR does too since
 *    fork copies pinned pages for the child (v5.9), and before that (`earlycow=0`) kept the
 *    page the child now shares;
 * 3. a registration larger than RLIMIT_MEMLOCK, and one larger than RAM: pinned fails with
 *    ENOMEM, ODP succeeds (nothing is pinned or charged) and its pages read fine.
 */
export const rdmaPinnedVsOdpScenario: Scenario = {
  name: 'rdma-pinned-vs-odp',
  description:
    'a pinned and an ODP MR side by side: munmap + re-mmap, fork + parent write, MRs larger than the locked-memory limit and than RAM',
  params: [
    {
      name: 'earlycow',
      description: '1: fork copies pinned pages for the child (v5.9+); 0: the kernels before',
      default: 1,
      min: 0,
      max: 1,
    },
    {
      name: 'memlock',
      description:
        "the process's RLIMIT_MEMLOCK, in pages; the MRs larger than it have memlock + 1 pages",
      default: 16,
      min: 4,
      max: 1 << 20,
    },
    {
      name: 'frames',
      description: 'physical frames of the machine: the MRs larger than RAM have frames + 16 pages',
      default: 64,
      min: 32,
      max: 1 << 16,
    },
  ],
  build(k: Kernel, p: ScenarioParams): void {
    const machine = new Machine(k, { frames: p.frames!, earlyCowPinned: p.earlycow === 1 });
    installOracles(k, machine);
    let checks = 0;
    registerOracle(k, {
      name: 'semantics',
      description: 'each MR reaches the page the pinned or on-demand semantics say it must',
      rules: ['rdma-semantics'],
      checks: () => checks,
    });
    const expect = (what: string, got: string, want: string): void => {
      checks++;
      observe(k, `${what}: ${got}`);
      if (got !== want) k.bug('rdma-semantics', `${what}: ${got}, expected ${want}`);
    };
    const app = createProcess(machine, { rlimitMemlock: p.memlock! * PAGE_SIZE });
    // Pins as much as it likes: its registration larger than RAM fails for want of memory.
    const admin = createProcess(machine, { capIpcLock: true });
    const peer = createProcess(machine);
    const appDev = new Mlx5Device(machine, { name: 'mlx5_0' });
    const peerDev = new Mlx5Device(machine, { name: 'mlx5_1' });
    k.spawn('app', function* () {
      const t = yield* setup(app, peer, appDev, peerDev);
      yield* remap(t, expect);
      yield* forkAndWrite(t, p.earlycow === 1, expect);
      yield* tooLarge(t, 'RLIMIT_MEMLOCK', p.memlock! + 1, expect);
      const u = yield* setup(admin, peer, appDev, peerDev);
      yield* tooLarge(u, 'RAM', p.frames! + 16, expect);
      for (const s of [t, u]) {
        yield* ibDeregMr(s.pinned);
        yield* ibDeregMr(s.odp);
        yield* ibUverbsClose(s.app.file);
        yield* ibUverbsClose(s.peer.file);
      }
      for (const proc of [app, admin, peer]) yield* exitMm(proc);
    });
  },
};

type Expect = (what: string, got: string, want: string) => void;

/** The two endpoints, a connection, the pinned and the ODP page and MR, and the peer's landing page. */
interface Setup {
  readonly app: Endpoint;
  readonly peer: Endpoint;
  readonly conn: QpEnd;
  readonly pinnedAt: number;
  readonly odpAt: number;
  readonly pinned: IbMr;
  readonly odp: IbMr;
  readonly landing: number;
  readonly landingMr: IbMr;
}

function* setup(app: Process, peer: Process, appDev: Mlx5Device, peerDev: Mlx5Device): Co<Setup> {
  const mapPage = (p: Process) =>
    mmap(p.mm!, { len: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  const pinnedAt = yield* mapPage(app);
  const odpAt = yield* mapPage(app);
  const landing = yield* mapPage(peer);
  const a = yield* openEndpoint(appDev, app);
  const b = yield* openEndpoint(peerDev, peer);
  yield* cpuWriteU32(app.mm!, pinnedAt, 1);
  yield* cpuWriteU32(app.mm!, odpAt, 1);
  const pinned = yield* ibRegMr(app, a.pd, pinnedAt, PAGE_SIZE, PINNED);
  const odp = yield* ibRegMr(app, a.pd, odpAt, PAGE_SIZE, ODP);
  const landingMr = yield* ibRegMr(peer, b.pd, landing, PAGE_SIZE, IB_ACCESS_LOCAL_WRITE);
  const [, conn] = yield* connectedPair(a, b);
  return { app: a, peer: b, conn, pinnedAt, odpAt, pinned, odp, landing, landingMr };
}

/** What the peer reads through `mr` at `addr`: the first word, or the completion's error. */
function* peerRead(t: Setup, mr: IbMr, addr: number): Co<string> {
  const wc = yield* postAndWait(t.conn, {
    wrId: 1,
    opcode: 'RDMA_READ',
    sgList: [{ addr: t.landing, length: 4, lkey: t.landingMr.lkey }],
    remoteAddr: addr,
    rkey: mr.rkey,
  });
  if (wc.status !== 'SUCCESS') return wc.status;
  const b = yield* cpuRead(t.peer.proc.mm!, t.landing, 4);
  return `reads ${new DataView(b.buffer).getInt32(0, true)}`;
}

/** munmap + mmap at the same address + write 2: pinned keeps the old page (1), ODP sees 2. */
function* remap(t: Setup, expect: Expect): Co {
  const mm = t.app.proc.mm!;
  for (const at of [t.pinnedAt, t.odpAt]) {
    yield* munmap(mm, at, PAGE_SIZE);
    yield* mmap(mm, {
      addr: at,
      len: PAGE_SIZE,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
    });
    yield* cpuWriteU32(mm, at, 2);
  }
  expect(
    'pinned MR after munmap + mmap + write 2',
    yield* peerRead(t, t.pinned, t.pinnedAt),
    'reads 1',
  );
  expect('ODP MR after munmap + mmap + write 2', yield* peerRead(t, t.odp, t.odpAt), 'reads 2');
}

/**
 * fork, then the parent writes 3 to both pages. The ODP MR follows the parent. The pinned MR
 * holds the page the parent had at registration (the old one, since the re-mmap): it keeps
 * reading 1 either way. So the pinned side is checked on a freshly registered page instead:
 * registered, fork, parent writes 4.
 */
function* forkAndWrite(t: Setup, earlyCow: boolean, expect: Expect): Co {
  const app = t.app.proc;
  const mm = app.mm!;
  yield* cpuWriteU32(mm, t.pinnedAt, 3);
  const fresh = yield* ibRegMr(app, t.app.pd, t.pinnedAt, PAGE_SIZE, PINNED);
  const child = yield* forkProcess(app);
  yield* cpuWriteU32(mm, t.pinnedAt, 4);
  yield* cpuWriteU32(mm, t.odpAt, 4);
  expect(
    `pinned MR after fork + parent write 4 (${earlyCow ? 'fork copies pinned pages' : 'before v5.9'})`,
    yield* peerRead(t, fresh, t.pinnedAt),
    earlyCow ? 'reads 4' : 'reads 3',
  );
  expect('ODP MR after fork + parent write 4', yield* peerRead(t, t.odp, t.odpAt), 'reads 4');
  yield* exitMm(child);
  yield* ibDeregMr(fresh);
}

/** A registration of `pages` pages, more than `what` allows: pinned ENOMEM, ODP fine and uncharged. */
function* tooLarge(t: Setup, what: string, pages: number, expect: Expect): Co {
  const app = t.app.proc;
  const mm = app.mm!;
  const at = yield* mmap(mm, {
    len: pages * PAGE_SIZE,
    prot: RW,
    flags: MAP_PRIVATE | MAP_ANONYMOUS,
  });
  const pinned = yield* tryReg(app, t, at, pages, PINNED);
  expect(`pinned MR of ${pages} pages (more than ${what})`, pinned.result, 'ENOMEM');
  const charged = mm.pinnedVm;
  const odp = yield* tryReg(app, t, at, pages, ODP);
  expect(`ODP MR of ${pages} pages (more than ${what})`, odp.result, 'registered');
  expect('  locked memory it charged', `${mm.pinnedVm - charged} pages`, '0 pages');
  yield* cpuWriteU32(mm, at + (pages - 1) * PAGE_SIZE, 5);
  const last = at + (pages - 1) * PAGE_SIZE;
  expect('  its last page (5) through it', yield* peerRead(t, odp.mr!, last), 'reads 5');
  yield* ibDeregMr(odp.mr!);
  yield* munmap(mm, at, pages * PAGE_SIZE);
}

function* tryReg(
  app: Process,
  t: Setup,
  at: number,
  pages: number,
  access: number,
): Co<{ result: string; mr: IbMr | null }> {
  try {
    const mr = yield* ibRegMr(app, t.app.pd, at, pages * PAGE_SIZE, access);
    return { result: 'registered', mr };
  } catch (e) {
    if (!isErrno(e)) throw e;
    return { result: (e as Errno).code, mr: null };
  }
}
