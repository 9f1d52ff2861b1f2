// The device-IO client of a `swarm` world: a process maps an mlx5 device's doorbell page,
// device memory and clock page through its uverbs file and touches them, while the device may
// be hot unplugged (one planned step of the world). Every touch is checked against what its VMA
// is due (mmap-io-touch.ts).
import { registerOracle } from '../../check/oracles/registry.ts';
import type { IbDm } from '../../drivers/rdma/core/objects.ts';
import { ibUnregisterDevice } from '../../drivers/rdma/core/rdma-core.ts';
import {
  ibUverbsClose,
  ibUverbsGetContext,
  ibUverbsOpen,
  type UverbsFile,
} from '../../drivers/rdma/core/uverbs.ts';
import { ibAllocDm, ibFreeDm, ibMmap } from '../../drivers/rdma/core/verbs.ts';
import { Mlx5Device } from '../../drivers/rdma/hw/mlx5/main.ts';
import { CORE_CLOCK_PGOFF, uarOffset } from '../../drivers/rdma/hw/mlx5/mmap.ts';
import { join, sleep } from '../../kernel/context.ts';
import type { Kernel } from '../../kernel/kernel.ts';
import { Completion } from '../../kernel/sync/completion.ts';
import { type Co, DONE, type Task } from '../../kernel/task.ts';
import { Errno, type ErrnoCode } from '../../lib/errors.ts';
import { PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../mm/constants.ts';
import { mmput } from '../../mm/exit.ts';
import type { Machine } from '../../mm/machine.ts';
import type { Mm } from '../../mm/mm.ts';
import { mmgetNotZero } from '../../mm/mm-refs.ts';
import { mprotect } from '../../mm/mprotect.ts';
import { munmap } from '../../mm/munmap.ts';
import { type IoMapping, type TouchWorld, touchMapping } from '../mmap-io-touch.ts';
import type { PlannedOp } from './plan.ts';
import { isProcessGone, isRaceError, orNull, STEP_NS, type SwarmProc } from './world.ts';

/** Pages of a process's device-memory allocation. */
const DM_PAGES = 2;
/** Errors a verbs call meets once the device is gone (or going). */
const GONE: readonly ErrnoCode[] = ['EIO', 'ENODEV'];

/** The device every mmap-io client of a world maps, and whether it was unplugged. */
export interface IoDevice extends TouchWorld {
  readonly dev: Mlx5Device;
  /** Completed once every mmapio client tried its first open: the unplug waits for it. */
  readonly mapped: Completion;
  /** mmapio clients that have not tried their first open yet. */
  pending: number;
}

/** An mmapio client tried its first open (or will never): the last one lets the unplug go. */
export function ioClientReady(io: IoDevice): void {
  if (io.pending > 0 && --io.pending === 0) io.mapped.completeAll();
}

/** The world's IO device, with the io-semantics oracle registered. */
export function ioDevice(k: Kernel, machine: Machine, clients: number): IoDevice {
  const io: IoDevice = {
    k,
    dev: new Mlx5Device(machine, { name: 'mlx5_io' }),
    revoked: false,
    checks: 0,
    mapped: new Completion('mlx5_io.mapped'),
    pending: clients,
  };
  registerOracle(k, {
    name: 'io-semantics',
    description:
      'each touch of device memory reads what its VMA is due: the device, the zero page, the dummy page or SIGBUS (I6)',
    rules: ['io-semantics'],
    checks: () => io.checks,
  });
  return io;
}

/** `fn()`, or null when it failed with one of `codes`. */
const unless = <T>(codes: readonly ErrnoCode[], fn: () => Co<T>): Co<T | null> =>
  orNull(fn, (e) => e instanceof Errno && codes.includes(e.code));

/** `fn()`, or null when it failed because the device went away under it. */
const unlessGone = <T>(fn: () => Co<T>): Co<T | null> => unless(GONE, fn);

/** An open mmap-io client: its descriptor, device memory and mappings. */
export interface IoMirror {
  read(page: number): Co<Uint8Array | null>;
  write(page: number, bytes: Uint8Array): Co<boolean>;
  /** Splits the device-memory mapping with mprotect and restores it. */
  prefetch(): Co;
  close(): Co;
  /** The mappings (a forked child touches its copies of them). */
  readonly maps: readonly IoMapping[];
}

/**
 * Opens the device for `proc`, allocates device memory and maps the doorbell, the device
 * memory and the clock page; null when the device is already gone.
 */
export function* openIo(io: IoDevice, proc: SwarmProc): Co<IoMirror | null> {
  const file = yield* unlessGone(() => ibUverbsOpen(io.dev));
  if (file === null) return null;
  const mapped = yield* unlessGone(() => mapAll(proc, file));
  if (mapped === null) {
    yield* ibUverbsClose(file);
    return null;
  }
  const { dm, maps } = mapped;
  // Another thread of the process maps the device memory again, racing this one's next steps
  // (the DM's free among them); at most one at a time.
  let remapper: Task<void> | null = null;
  const remap = (): void => {
    if (remapper === null || remapper.state === DONE)
      remapper = io.k.spawn(`p${proc.index}.mmapio.remap`, () => mapAgain(io, proc, file, dm));
  };
  const touchAll = function* (token: number): Co {
    for (const m of maps) yield* touchMapping(io, proc.mm, m, token);
  };
  return {
    maps,
    *read(page) {
      yield* touchAll(0x100 + page);
      return null;
    },
    *write(page) {
      yield* touchAll(0x200 + page);
      return true;
    },
    *prefetch() {
      remap();
      try {
        // Splits the device-memory VMA (->open on the new piece) and restores its rights.
        const second = maps[1]!.addr + PAGE_SIZE;
        yield* mprotect(proc.mm, second, PAGE_SIZE, PROT_READ);
        yield* mprotect(proc.mm, second, PAGE_SIZE, PROT_READ | PROT_WRITE);
      } catch (e) {
        if (!isProcessGone(proc, e)) throw e;
      }
    },
    *close() {
      remap();
      yield* unlessGone(() => ibFreeDm(dm));
      if (remapper !== null) yield* join(remapper);
      yield* ibUverbsClose(file);
    },
  };
}

function* mapAll(proc: SwarmProc, file: UverbsFile): Co<{ dm: IbDm; maps: IoMapping[] }> {
  const ctx = yield* ibUverbsGetContext(file, proc.process);
  const dm = yield* ibAllocDm(ctx, DM_PAGES);
  const rw = PROT_READ | PROT_WRITE;
  const uar = yield* ibMmap(proc.process, file, uarOffset(ctx), PAGE_SIZE, rw);
  const dmAt = yield* ibMmap(proc.process, file, dm.offset, DM_PAGES * PAGE_SIZE, rw);
  const clock = yield* ibMmap(
    proc.process,
    file,
    CORE_CLOCK_PGOFF * PAGE_SIZE,
    PAGE_SIZE,
    PROT_READ,
  );
  return {
    dm,
    maps: [
      { name: `p${proc.index} doorbell`, addr: uar, pages: 1 },
      { name: `p${proc.index} device memory`, addr: dmAt, pages: DM_PAGES },
      { name: `p${proc.index} clock`, addr: clock, pages: 1 },
    ],
  };
}

/**
 * A second mapping of the device memory, touched and unmapped: its mmap looks the entry up
 * again (rdma_user_mmap_entry_get), which may race the entry's removal by the unplug.
 */
function* mapAgain(io: IoDevice, proc: SwarmProc, file: UverbsFile, dm: IbDm): Co {
  if (!mmgetNotZero(proc.mm)) return;
  const len = DM_PAGES * PAGE_SIZE;
  try {
    // EINVAL: the entry was removed (the DM freed) before the lookup.
    const at = yield* unless([...GONE, 'EINVAL'], () =>
      ibMmap(proc.process, file, dm.offset, len, PROT_READ | PROT_WRITE),
    );
    if (at === null) return;
    const name = `p${proc.index} device memory (second mapping)`;
    yield* touchMapping(io, proc.mm, { name, addr: at, pages: DM_PAGES }, 0x300);
    yield* munmap(proc.mm, at, len);
  } catch (e) {
    if (!isProcessGone(proc, e)) throw e;
  } finally {
    yield* mmput(proc.mm);
  }
}

/** A forked child's touches of its copies of the parent's device mappings. */
export function* touchCopies(
  io: IoDevice,
  child: Mm,
  maps: readonly IoMapping[],
  token: number,
): Co {
  try {
    for (const m of maps)
      yield* touchMapping(io, child, { ...m, name: `${m.name} (child's copy)` }, token);
  } catch (e) {
    if (!isRaceError(e)) throw e;
  }
}

/**
 * The world's unplug step: once every mmapio client tried to map the device, and `op.page`
 * steps later, the device is hot unplugged.
 */
export function* unplugLife(io: IoDevice, op: PlannedOp | undefined): Co {
  if (op === undefined) return;
  yield* io.mapped.wait();
  yield* sleep(STEP_NS * op.page);
  yield* ibUnregisterDevice(io.dev);
  io.revoked = true;
}
