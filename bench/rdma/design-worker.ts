/**
 * One child process of the per-design RDMA benchmark: `design-worker.ts <case> <reps> [args]`
 * measures one case and prints one JSON line. Cases:
 * - `design <2014|2018|2020|list> <mrs>`: a server's 10,000-page buffer registered as `mrs` ODP
 *   MRs; ns per device fault (2,000 first WRITEs, one per fifth page) against the same WRITEs
 *   into pinned MRs, and ns per invalidation (MADV_DONTNEED of each of those pages) against
 *   the same discards with no MR registered.
 * - `implicit`: ns per WRITE whose fault creates an implicit-ODP child (one per GiB) against
 *   WRITEs faulting into a child that exists; heap bytes per child.
 * - `tracking <2014|2018|2020|list> <mrs>`: heap bytes of registering 1 GiB as `mrs` ODP MRs
 *   (no page touched), per GiB.
 * Tracing is off (no subscriber), so no oracle runs in the measured worlds.
 */
import type { OdpDesign } from '../../src/drivers/rdma/core/device.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_WRITE,
  SIZE_MAX,
} from '../../src/drivers/rdma/core/ib-verbs.ts';
import type { IbMr } from '../../src/drivers/rdma/core/objects.ts';
import { ibRegMr } from '../../src/drivers/rdma/core/verbs.ts';
import { Mlx5Device } from '../../src/drivers/rdma/hw/mlx5/main.ts';
import { MLX5_IMR_MTT_SIZE } from '../../src/drivers/rdma/hw/mlx5/odp-implicit.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import type { Co } from '../../src/kernel/task.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { Machine } from '../../src/mm/machine.ts';
import { madvise } from '../../src/mm/madvise.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { createProcess, type Process } from '../../src/mm/process.ts';
import {
  connectedPair,
  type Endpoint,
  openEndpoint,
  postAndWait,
  type QpEnd,
} from '../../src/scenarios/rdma-kit.ts';
import {
  type BenchDesign,
  BUFFER_PAGES,
  CHILDREN,
  type DesignResult,
  GIB_PAGES,
  TOUCHED,
} from './designs.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const collect = gc;

const ODP = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE | IB_ACCESS_ON_DEMAND;
const PINNED = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE;

/** A server and a client on two HCAs of `design`, the client with a pinned one-page buffer. */
interface World {
  k: Kernel;
  machine: Machine;
  server: Process;
  client: Process;
  sdev: Mlx5Device;
  cdev: Mlx5Device;
  design: BenchDesign;
}

function world(design: BenchDesign, frames: number): World {
  const k = new Kernel({ maxSteps: Number.MAX_SAFE_INTEGER });
  const odpDesign: OdpDesign = design === 'list' ? 2014 : design;
  const machine = new Machine(k, { frames, legacyNotifierCore: odpDesign !== 2020 });
  return {
    k,
    machine,
    design,
    server: createProcess(machine, { capIpcLock: true }),
    client: createProcess(machine, { capIpcLock: true }),
    sdev: new Mlx5Device(machine, { name: 'mlx5_1', odpDesign }),
    cdev: new Mlx5Device(machine, { name: 'mlx5_0', odpDesign }),
  };
}

function* mapAnon(p: Process, len: number): Co<number> {
  return yield* mmap(p.mm!, {
    len,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS,
  });
}

/** Registers [base, base + mrs × pages) as `mrs` MRs of `pages` pages. */
function* registerMrs(
  w: World,
  pd: Endpoint['pd'],
  base: number,
  mrs: number,
  pages: number,
  access: number,
): Co<IbMr[]> {
  const out: IbMr[] = [];
  for (let i = 0; i < mrs; i++)
    out.push(yield* ibRegMr(w.server, pd, base + i * pages * PAGE_SIZE, pages * PAGE_SIZE, access));
  return out;
}

/** The client's connected end and its one-page source buffer. */
interface Client {
  end: QpEnd;
  cbuf: number;
  lkey: number;
}

/** Connects a client QP to `server`'s. */
function* clientEnd(w: World, server: Endpoint): Co<Client> {
  const cbuf = yield* mapAnon(w.client, PAGE_SIZE);
  yield* cpuWriteU32(w.client.mm!, cbuf, 1);
  const c = yield* openEndpoint(w.cdev, w.client);
  const cmr = yield* ibRegMr(w.client, c.pd, cbuf, PAGE_SIZE, PINNED);
  const [end] = yield* connectedPair(c, server, { minRnrTimer: 1 });
  return { end, cbuf, lkey: cmr.lkey };
}

function* write(c: Client, addr: number, mr: IbMr): Co {
  const wc = yield* postAndWait(c.end, {
    wrId: 0,
    opcode: 'RDMA_WRITE',
    sgList: [{ addr: c.cbuf, length: 64, lkey: c.lkey }],
    remoteAddr: addr,
    rkey: mr.rkey,
  });
  if (wc.status !== 'SUCCESS') throw new Error(`WRITE at 0x${addr.toString(16)}: ${wc.status}`);
}

/** Runs a world to its end; throws if it failed. */
function finish(w: World): void {
  const r = w.k.run();
  if (!r.ok) throw new Error(`world failed: ${r.bug?.message}`);
}

/**
 * ns per first WRITE (each faulting a page in, or into pinned MRs) and per MADV_DONTNEED of
 * a page the device maps (or, with `mrs` 0, of a page only the CPU touched).
 */
function faultsAndDiscards(design: BenchDesign, mrs: number, access: number): [number, number] {
  collect();
  const w = world(design, BUFFER_PAGES + 64);
  const ns = [0, 0] as [number, number];
  w.k.spawn('bench', function* () {
    const base = yield* mapAnon(w.server, BUFFER_PAGES * PAGE_SIZE);
    const pageAt = (i: number) => base + i * 5 * PAGE_SIZE;
    if (mrs === 0) {
      for (let i = 0; i < TOUCHED; i++) yield* cpuWriteU32(w.server.mm!, pageAt(i), i);
    } else {
      const s = yield* openEndpoint(w.sdev, w.server);
      s.ctx.odp2014.linearDispatch = design === 'list';
      const per = BUFFER_PAGES / mrs;
      const list = yield* registerMrs(w, s.pd, base, mrs, per, access);
      const c = yield* clientEnd(w, s);
      const t0 = performance.now();
      for (let i = 0; i < TOUCHED; i++)
        yield* write(c, pageAt(i), list[Math.floor((i * 5) / per)]!);
      ns[0] = ((performance.now() - t0) * 1e6) / TOUCHED;
    }
    const t1 = performance.now();
    for (let i = 0; i < TOUCHED; i++)
      yield* madvise(w.server.mm!, pageAt(i), PAGE_SIZE, MADV_DONTNEED);
    ns[1] = ((performance.now() - t1) * 1e6) / TOUCHED;
  });
  finish(w);
  return ns;
}

/** ns per WRITE into fresh pages of an implicit MR: one per GiB (`spread`) or all in one GiB. */
function implicitWrites(spread: boolean): { ns: number; heap: number } {
  collect();
  const h0 = process.memoryUsage().heapUsed;
  const w = world(2020, 2 * CHILDREN + 64);
  let ns = 0;
  w.k.spawn('bench', function* () {
    const base = yield* mapAnon(w.server, (CHILDREN + 1) * MLX5_IMR_MTT_SIZE);
    const s = yield* openEndpoint(w.sdev, w.server);
    const imr = yield* ibRegMr(w.server, s.pd, 0, SIZE_MAX, ODP);
    const c = yield* clientEnd(w, s);
    // A page in the last GiB first: the baseline's child exists before the timing starts.
    const last = base + CHILDREN * MLX5_IMR_MTT_SIZE;
    yield* write(c, last, imr);
    const step = spread ? MLX5_IMR_MTT_SIZE : PAGE_SIZE;
    const first = spread ? base : last + PAGE_SIZE;
    const t0 = performance.now();
    for (let i = 0; i < CHILDREN; i++) yield* write(c, first + i * step, imr);
    ns = ((performance.now() - t0) * 1e6) / CHILDREN;
  });
  finish(w);
  collect();
  const heap = process.memoryUsage().heapUsed - h0;
  if (w.sdev.mkeys.size === 0) throw new Error('world lost');
  return { ns, heap };
}

/**
 * Worlds measured at once per MR count: a few MRs' tracking state is smaller than the heap's
 * noise between two measurements, so it is measured over many copies and divided.
 */
const copiesFor = (mrs: number) => (mrs >= 10_000 ? 1 : mrs >= 100 ? 8 : 64);

/**
 * Heap bytes of one world with 1 GiB mapped and registered as `mrs` ODP MRs (0: none), the
 * mean over `copies` worlds alive together.
 */
function registeredHeap(
  design: BenchDesign,
  mrs: number,
  copies: number,
): { bytes: number; pages: number } {
  collect();
  const h0 = process.memoryUsage().heapUsed;
  const per = Math.floor(GIB_PAGES / Math.max(mrs, 1));
  const worlds = [];
  for (let c = 0; c < copies; c++) {
    const w = world(design, 64);
    w.k.spawn('bench', function* () {
      const base = yield* mapAnon(w.server, GIB_PAGES * PAGE_SIZE);
      const s = yield* openEndpoint(w.sdev, w.server);
      if (mrs > 0) yield* registerMrs(w, s.pd, base, mrs, per, ODP);
    });
    finish(w);
    worlds.push(w);
  }
  collect();
  const bytes = (process.memoryUsage().heapUsed - h0) / copies;
  if (worlds.some((w) => w.sdev.mkeys.size !== mrs)) throw new Error('world lost');
  return { bytes, pages: per * mrs };
}

function parseDesign(s: string | undefined): BenchDesign {
  if (s === 'list') return 'list';
  if (s === '2014' || s === '2018' || s === '2020') return Number(s) as OdpDesign;
  throw new Error(`unknown design ${s}`);
}

const [what, repsArg, a1, a2] = process.argv.slice(2);
const reps = Number(repsArg ?? '3');
if (what === 'design') {
  const design = parseDesign(a1);
  const mrs = Number(a2);
  const out: DesignResult = {
    faults: { model: [], bare: [] },
    invalidations: { model: [], bare: [] },
  };
  for (let i = 0; i < reps; i++) {
    const [f, inv] = faultsAndDiscards(design, mrs, ODP);
    out.faults.model.push(f);
    out.invalidations.model.push(inv);
    out.faults.bare.push(faultsAndDiscards(design, mrs, PINNED)[0]);
    out.invalidations.bare.push(faultsAndDiscards(design, 0, ODP)[1]);
  }
  console.log(JSON.stringify(out));
} else if (what === 'implicit') {
  const out = {
    writes: { model: [] as number[], bare: [] as number[] },
    heapPerChild: [] as number[],
  };
  // One untimed pass of each first, so that the JIT has settled before the timed ones.
  implicitWrites(true);
  implicitWrites(false);
  for (let i = 0; i < reps; i++) {
    const a = implicitWrites(true);
    const b = implicitWrites(false);
    out.writes.model.push(a.ns);
    out.writes.bare.push(b.ns);
    out.heapPerChild.push((a.heap - b.heap) / CHILDREN);
  }
  console.log(JSON.stringify(out));
} else if (what === 'tracking') {
  const design = parseDesign(a1);
  const mrs = Number(a2);
  const perGib: number[] = [];
  let pages = 0;
  for (let i = 0; i < reps; i++) {
    const copies = copiesFor(mrs);
    const bare = registeredHeap(design, 0, copies).bytes;
    const r = registeredHeap(design, mrs, copies);
    pages = r.pages;
    perGib.push(((r.bytes - bare) * GIB_PAGES) / r.pages);
  }
  console.log(JSON.stringify({ perGib, pages }));
} else throw new Error(`unknown case ${what}`);
