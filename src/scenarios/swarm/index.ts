// `swarm`: a world generated per run from its seed (swarm testing, Groce et al., ISSTA 2012):
// which mm operations and clients are enabled, how many processes and threads, and what each
// thread does, all drawn within the `--set` bounds.
import { installOracles } from '../../check/oracles/install.ts';
import { DmirrorDevice } from '../../drivers/dmirror/device.ts';
import { join } from '../../kernel/context.ts';
import type { Kernel } from '../../kernel/kernel.ts';
import { Completion } from '../../kernel/sync/completion.ts';
import type { Co, Task } from '../../kernel/task.ts';
import { isErrno } from '../../lib/errors.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MMAP_BASE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../mm/constants.ts';
import { cpuWrite } from '../../mm/cpu-access.ts';
import { Machine } from '../../mm/machine.ts';
import { mmap } from '../../mm/mmap.ts';
import { createProcess, exitMm } from '../../mm/process.ts';
import { PageValues, pageOf } from '../page-values.ts';
import { paramOf, type Scenario, type ScenarioParams } from '../scenario.ts';
import { clientLife } from './clients.ts';
import { mmStep, readPages } from './mm-ops.ts';
import { ioDevice, unplugLife } from './mmapio-client.ts';
import {
  describePlan,
  generatePlan,
  type PlannedThread,
  RDMA_KINDS,
  type SwarmBounds,
  type SwarmPlan,
} from './plan.ts';
import { rdmaDevice } from './rdma-client.ts';
import type { SwarmProc, SwarmWorld } from './world.ts';

/** Where each process maps its region: 4 GiB below the top of the mmap area. */
const REGION_BASE = MMAP_BASE - 2 ** 32;

/** The initial value of page `p` of the world's data model. */
const initial = (p: number) => p + 1;

function bounds(p: ScenarioParams): SwarmBounds {
  const v = (name: string) => paramOf('swarm', p, name);
  return {
    procs: v('procs'),
    threads: v('threads'),
    ops: v('ops'),
    pages: v('pages'),
    clients: v('clients'),
    findings: v('findings') === 1,
    rdma: v('rdma') === 0 ? null : (RDMA_KINDS[v('rdma') - 1] ?? null),
  };
}

/**
 * `swarm`: each run draws its own world from its seed: the mm operations and clients enabled,
 * the processes, their regions, threads and clients, and every thread's steps. Every page
 * read by the CPU, a forked child or a client is checked against what its writers put there.
 */
export const swarmScenario: Scenario = {
  name: 'swarm',
  description:
    'a world generated per run: processes, clients and threads making every mm operation, drawn from the seed (swarm testing)',
  params: [
    { name: 'procs', description: 'most processes', default: 2, min: 1, max: 4 },
    {
      name: 'threads',
      description: 'most threads of mm operations per process',
      default: 3,
      min: 1,
      max: 8,
    },
    {
      name: 'ops',
      description: "most steps per thread (mm operations, or a client's uses)",
      default: 4,
      min: 1,
      max: 64,
    },
    {
      name: 'pages',
      description: "most pages of a process's region",
      default: 6,
      min: 2,
      max: 256,
    },
    {
      name: 'clients',
      description: 'most clients mirroring a process (0: none)',
      default: 5,
      min: 0,
      max: 5,
    },
    {
      name: 'rdma',
      description: `the RDMA device of every world: 0 drawn per world, ${RDMA_KINDS.map((r, i) => `${i + 1} ${r}`).join(', ')}`,
      default: 0,
      min: 0,
      max: RDMA_KINDS.length,
    },
    {
      name: 'findings',
      description:
        "1: known kernel bugs stay reachable (those of docs/findings/: mlx5's invalidation of a revoked ODP MR, nouveau's missing ->release, the interval side a refused non-blockable start leaves open; the 2014 ODP design's exit with an MR registered; in 2014-design worlds, the pre-5.13 core's unended start when the OOM reaper meets a refusal), so explorations find them again; 0: their fixes apply, and a 2014-design world with a KVM client does not reap, so a violation is news",
      default: 0,
      min: 0,
      max: 1,
    },
  ],
  operations(p: ScenarioParams, seed: number): number {
    return generatePlan(seed, bounds(p)).operations;
  },
  describe(p: ScenarioParams, seed: number, omit: ReadonlySet<number>): string[] {
    return describePlan(generatePlan(seed, bounds(p)), omit);
  },
  build(k: Kernel, p: ScenarioParams, omit: ReadonlySet<number> = new Set()): void {
    buildSwarm(k, generatePlan(k.seed, bounds(p)), omit);
  },
};

/** The plan's world on `k`, without the operations in `omit`. */
export function buildSwarm(k: Kernel, plan: SwarmPlan, omit: ReadonlySet<number>): void {
  const rdmaUsed = plan.procs.some((p) => p.clients.includes('rdma'));
  // The per-context ODP design predates the notifier core of 5.4 and later: its worlds run the
  // older core.
  const legacyNotifierCore = rdmaUsed && plan.rdma === 'mlx5-2014';
  // The fix docs/findings/itree-nonblock-leak.md proposes, unless known findings are asked for.
  const unwindItreeOnRefusal = !plan.findings && !legacyNotifierCore;
  const machine = new Machine(k, { frames: plan.frames, legacyNotifierCore, unwindItreeOnRefusal });
  installOracles(k, machine);
  const total = plan.procs.reduce((n, p) => n + p.pages, 0);
  const values = new PageValues(k, total, initial);
  let first = 0;
  const procs: SwarmProc[] = plan.procs.map((pp, index) => {
    const process = createProcess(machine);
    const proc = {
      index,
      process,
      mm: process.mm!,
      pages: pp.pages,
      altSubscribe: pp.altSubscribe,
      first,
      ready: new Completion(`p${index}.ready`),
      base: 0,
      exited: false,
      ioMaps: [],
    };
    first += pp.pages;
    return proc;
  });
  const rdma = rdmaUsed ? rdmaDevice(machine, plan.rdma, !plan.findings) : null;
  const dmirror = new DmirrorDevice(machine, 0);
  const ioClients = plan.procs.filter((p) => p.clients.includes('mmapio')).length;
  const io = ioClients > 0 ? ioDevice(k, machine, ioClients) : null;
  const w: SwarmWorld = { k, machine, plan, dmirror, rdma, io, values, procs };
  const tasks = procs.map(() => [] as Task[]);
  for (const t of plan.threads) {
    const proc = procs[t.proc]!;
    const ops = t.ops.filter((op) => !omit.has(op.id));
    tasks[t.proc]!.push(k.spawn(t.name, () => threadLife(w, proc, t, ops)));
  }
  for (const proc of procs)
    k.spawn(`p${proc.index}`, () => processLife(w, proc, tasks[proc.index]!));
  if (io !== null) {
    const unplug = plan.unplug !== null && !omit.has(plan.unplug.id) ? plan.unplug : undefined;
    k.spawn('unplug', () => unplugLife(io, unplug));
  }
}

function* threadLife(
  w: SwarmWorld,
  proc: SwarmProc,
  t: PlannedThread,
  ops: PlannedThread['ops'],
): Co {
  yield* proc.ready.wait();
  if (t.client !== null) return yield* clientLife(w, proc, t.client, ops);
  for (const op of ops) yield* mmStep(w, proc, op);
}

/**
 * The process: maps and fills its region, lets its threads go, waits for them, reads its
 * region back (unless it exited) and exits.
 */
/** The process's last look at its whole region. */
function readRegion(w: SwarmWorld, proc: SwarmProc): Co {
  const all = { id: -1, kind: 'cpu-read', page: 0, count: proc.pages } as const;
  return readPages(w, proc, proc.mm, all, `p${proc.index}`);
}

function* processLife(w: SwarmWorld, proc: SwarmProc, threads: readonly Task[]): Co {
  const mm = proc.mm;
  // Fixed, well below where the kernel places mappings: a device mapping or a file the kernel
  // places later never lands in a hole of the region.
  proc.base = yield* mmap(mm, {
    addr: REGION_BASE,
    len: proc.pages * PAGE_SIZE,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
  });
  for (let p = 0; p < proc.pages; p++) {
    try {
      yield* cpuWrite(mm, proc.base + p * PAGE_SIZE, pageOf(initial(proc.first + p)));
    } catch (e) {
      // No frame even after reclaim (the model has no OOM killer): the page stays empty.
      if (!isErrno(e, 'ENOMEM')) throw e;
      w.values.allow(proc.first + p, 0);
    }
  }
  proc.ready.completeAll();
  for (const t of threads) yield* join(t);
  if (proc.exited) return;
  yield* readRegion(w, proc);
  proc.exited = true;
  yield* exitMm(proc.process);
}
