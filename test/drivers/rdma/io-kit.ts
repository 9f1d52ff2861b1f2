// A world for the device-memory mapping tests: one machine with its oracles, an mlx5-like
// device of a given era, and a process with the device open and a context.
import assert from 'node:assert/strict';
import { installOracles } from '../../../src/check/oracles/install.ts';
import type { RdmaUserMmapEntry } from '../../../src/drivers/rdma/core/ib-core-uverbs.ts';
import type { IbUcontext } from '../../../src/drivers/rdma/core/objects.ts';
import {
  ibUverbsGetContext,
  ibUverbsOpen,
  type UverbsFile,
} from '../../../src/drivers/rdma/core/uverbs.ts';
import { ibMmap } from '../../../src/drivers/rdma/core/verbs.ts';
import { Mlx5Device } from '../../../src/drivers/rdma/hw/mlx5/main.ts';
import { CORE_CLOCK_PGOFF, uarOffset } from '../../../src/drivers/rdma/hw/mlx5/mmap.ts';
import { type Co, isErrno, Kernel, type RunResult, TraceRecorder } from '../../../src/index.ts';
import { TimedStrategy } from '../../../src/kernel/strategies/timed.ts';
import { PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../../src/mm/constants.ts';
import { cpuReadU32 } from '../../../src/mm/cpu-access.ts';
import { isSigbus } from '../../../src/mm/fault.ts';
import { Machine } from '../../../src/mm/machine.ts';
import { createProcess, type Process } from '../../../src/mm/process.ts';

export const P = PAGE_SIZE;
export const RW = PROT_READ | PROT_WRITE;

/** What a test body gets. */
export interface IoWorld {
  readonly k: Kernel;
  readonly machine: Machine;
  readonly dev: Mlx5Device;
  readonly proc: Process;
  readonly file: UverbsFile;
  readonly ctx: IbUcontext;
  /** Every entry ->mmap_free was called with, in call order. */
  readonly mmapFreed: RdmaUserMmapEntry[];
}

/** Options of {@link runIo}. */
export interface IoOptions {
  readonly era?: number;
  readonly mutants?: readonly string[];
  /** Runs before the world's main task exists (to spawn tasks of its own). */
  readonly spawn?: (k: Kernel, w: () => IoWorld) => void;
}

/** Runs `body` as the task `main` of a fresh world (timed strategy); returns the run and its trace. */
export function runIo(
  body: (w: IoWorld) => Co,
  options: IoOptions = {},
): RunResult & { rec: TraceRecorder; dev: Mlx5Device } {
  // Virtual-time order, so that a sleeping task lets the others run (the deferred fput).
  const k = new Kernel({ mutants: options.mutants ?? [], strategy: new TimedStrategy() });
  const rec = new TraceRecorder(k.trace);
  const machine = new Machine(k, { frames: 64 });
  installOracles(k, machine);
  const dev = new Mlx5Device(machine, { name: 'mlx5_0', era: options.era ?? 612 });
  const proc = createProcess(machine);
  const mmapFreed: RdmaUserMmapEntry[] = [];
  const ops = dev.ops;
  const driverFree = ops.mmapFree;
  ops.mmapFree = (entry) => {
    mmapFreed.push(entry);
    driverFree?.call(ops, entry);
  };
  let world: IoWorld | null = null;
  k.spawn('main', function* () {
    const file = yield* ibUverbsOpen(dev);
    const ctx = yield* ibUverbsGetContext(file, proc);
    world = { k, machine, dev, proc, file, ctx, mmapFreed };
    yield* body(world);
  });
  options.spawn?.(k, () => world!);
  return { ...k.run(), rec, dev };
}

/** The part of a world a mapping needs. */
export type Opened = Pick<IoWorld, 'proc' | 'file' | 'ctx'>;

/** Runs `body` (see {@link runIo}) and asserts the run is clean and the body ran to its end. */
export function runIoClean(body: (w: IoWorld) => Co, options: IoOptions = {}): void {
  let done = false;
  const r = runIo(function* (w) {
    yield* body(w);
    done = true;
  }, options);
  assert.ok(r.ok, r.bug?.message);
  assert.ok(done, 'the test body did not run to its end');
}

/** Maps the context's doorbell page read-write; returns its address. */
export function mapDoorbell(w: Opened, proc = w.proc): Co<number> {
  return ibMmap(proc, w.file, uarOffset(w.ctx), P, RW);
}

/** Maps the device's clock page read-only; returns its address. */
export function mapClock(w: Opened, proc = w.proc): Co<number> {
  return ibMmap(proc, w.file, CORE_CLOCK_PGOFF * P, P, PROT_READ);
}

/** The result of a call ('ok' for none), or the code of the Errno it threw. */
export function* attempt<T>(f: () => Co<T>): Co<T | string> {
  try {
    const r = yield* f();
    return r === undefined ? 'ok' : r;
  } catch (e) {
    if (isErrno(e)) return e.code;
    throw e;
  }
}

/** What a read of `addr` in `proc` gives: the first int, or 'SIGBUS'. */
export function* readOrSigbus(proc: Process, addr: number): Co<number | 'SIGBUS'> {
  try {
    return yield* cpuReadU32(proc.mm!, addr);
  } catch (e) {
    if (isSigbus(e)) return 'SIGBUS';
    throw e;
  }
}
