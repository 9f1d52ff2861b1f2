// A two-process RDMA world for the driver tests: a server and a client on one machine, each
// with its own mlx5-like device and verbs endpoint, oracles installed, and one RC connection.
import { installOracles } from '../../../src/check/oracles/install.ts';
import type { IbDevice } from '../../../src/drivers/rdma/core/device.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_ATOMIC,
  IB_ACCESS_REMOTE_READ,
  IB_ACCESS_REMOTE_WRITE,
  type IbOdpCaps,
} from '../../../src/drivers/rdma/core/ib-verbs.ts';
import type { IbSendWr, IbWc } from '../../../src/drivers/rdma/core/objects.ts';
import { Mlx5Device, type OdpDesign } from '../../../src/drivers/rdma/hw/mlx5/main.ts';
import { type Co, Kernel, type RunResult, TraceRecorder } from '../../../src/index.ts';
import type { Strategy } from '../../../src/kernel/strategy.ts';
import { PAGE_SIZE } from '../../../src/mm/constants.ts';
import { cpuRead, cpuWrite } from '../../../src/mm/cpu-access.ts';
import { Machine, type MachineOptions } from '../../../src/mm/machine.ts';
import { mmap } from '../../../src/mm/mmap.ts';
import { createProcess, type Process } from '../../../src/mm/process.ts';
import {
  connectedPair,
  type Endpoint,
  openEndpoint,
  postAndWait,
  type QpEnd,
  type RcAttrs,
} from '../../../src/scenarios/rdma-kit.ts';
import { ANON, RW } from '../../mm/helpers.ts';

export const P = PAGE_SIZE;

/** A umem's per-page state, one character per page: '-' unmapped, 'r' readable, 'w' writable. */
export function slotString(u: {
  start: number;
  end: number;
  slots: { get(i: number): { write: boolean } | undefined };
}): string {
  let s = '';
  for (let i = 0; i < (u.end - u.start) / P; i++) {
    const slot = u.slots.get(i);
    s += slot === undefined ? '-' : slot.write ? 'w' : 'r';
  }
  return s;
}
/** Every right, on demand. */
export const ODP_ALL =
  IB_ACCESS_LOCAL_WRITE |
  IB_ACCESS_REMOTE_READ |
  IB_ACCESS_REMOTE_WRITE |
  IB_ACCESS_REMOTE_ATOMIC |
  IB_ACCESS_ON_DEMAND;
/** Every right, pinned. */
export const PINNED_ALL = ODP_ALL & ~IB_ACCESS_ON_DEMAND;

/** The world a test body gets: its devices are mlx5-like unless the options say otherwise. */
export interface RdmaWorld<D extends IbDevice = Mlx5Device> {
  readonly k: Kernel;
  readonly machine: Machine;
  readonly server: Process;
  readonly client: Process;
  readonly sdev: D;
  readonly cdev: D;
  readonly sep: Endpoint;
  readonly cep: Endpoint;
}

/** Options of {@link runRdma}. */
export interface RdmaOptions<D extends IbDevice = Mlx5Device> {
  /** Makes the server's and the client's device (default: mlx5-like, per the options below). */
  readonly device?: (machine: Machine, name: string) => D;
  readonly machine?: MachineOptions;
  readonly mutants?: readonly string[];
  readonly serverCaps?: IbOdpCaps;
  readonly serverProcess?: { rlimitMemlock?: number; capIpcLock?: boolean };
  /** The scheduling strategy (default: the first runnable task runs). */
  readonly strategy?: Strategy;
  /** The devices' ODP design (default 2014, on the notifier core of its time). */
  readonly odpDesign?: OdpDesign;
}

/** Runs `body` as one task in a fresh RDMA world; returns the run and its trace. */
export function runRdma<D extends IbDevice = Mlx5Device>(
  body: (w: RdmaWorld<D>) => Co,
  options: RdmaOptions<D> = {},
): RunResult & { rec: TraceRecorder; machine: Machine } {
  const k = new Kernel({
    mutants: options.mutants ?? [],
    ...(options.strategy === undefined ? {} : { strategy: options.strategy }),
  });
  const rec = new TraceRecorder(k.trace);
  const design = options.odpDesign ?? 2014;
  const machine = new Machine(k, {
    frames: 64,
    legacyNotifierCore: design !== 2020,
    ...options.machine,
  });
  installOracles(k, machine);
  const server = createProcess(machine, options.serverProcess ?? {});
  const client = createProcess(machine);
  const make =
    options.device ??
    ((m: Machine, name: string) =>
      new Mlx5Device(m, {
        name,
        odpDesign: design,
        ...(options.serverCaps === undefined || name !== 'mlx5_1'
          ? {}
          : { odpCaps: options.serverCaps }),
      }) as unknown as D);
  const sdev = make(machine, 'mlx5_1');
  const cdev = make(machine, 'mlx5_0');
  k.spawn('main', function* () {
    const sep = yield* openEndpoint(sdev, server);
    const cep = yield* openEndpoint(cdev, client);
    yield* body({ k, machine, server, client, sdev, cdev, sep, cep });
  });
  return { ...k.run(), rec, machine };
}

/** Maps `pages` anonymous pages in `proc`, page i filled with `fill(i)` in every int (if given). */
export function* mapPages(proc: Process, pages: number, fill?: (i: number) => number): Co<number> {
  const mm = proc.mm!;
  const at = yield* mmap(mm, { len: pages * P, prot: RW, flags: ANON });
  if (fill !== undefined)
    for (let i = 0; i < pages; i++) yield* cpuWrite(mm, at + i * P, ints(fill(i)));
  return at;
}

/** A page of one int value. */
export function ints(v: number, pages = 1): Uint8Array {
  const b = new Uint8Array(pages * P);
  new Int32Array(b.buffer).fill(v);
  return b;
}

/** The first int of the page at `addr` in `proc`. */
export function* firstInt(proc: Process, addr: number): Co<number> {
  const b = yield* cpuRead(proc.mm!, addr, 4);
  return new DataView(b.buffer).getInt32(0, true);
}

/** The client and server ends of a new connection. */
export function* connect(w: RdmaWorld<IbDevice>, attrs: RcAttrs = {}): Co<{ c: QpEnd; s: QpEnd }> {
  const [c, s] = yield* connectedPair(w.cep, w.sep, attrs);
  return { c, s };
}

/** Posts and waits. */
export function* post(end: QpEnd, wr: Omit<IbSendWr, 'wrId'> & { wrId?: number }): Co<IbWc> {
  return yield* postAndWait(end, { wrId: 1, ...wr });
}
