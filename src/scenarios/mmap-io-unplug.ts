import { installOracles } from '../check/oracles/install.ts';
import { registerOracle } from '../check/oracles/registry.ts';
import type { IbDm, IbUcontext } from '../drivers/rdma/core/objects.ts';
import { ibUnregisterDevice } from '../drivers/rdma/core/rdma-core.ts';
import {
  ibUverbsClose,
  ibUverbsGetContext,
  ibUverbsOpen,
  type UverbsFile,
} from '../drivers/rdma/core/uverbs.ts';
import { ibAllocDm, ibFreeDm, ibMmap } from '../drivers/rdma/core/verbs.ts';
import { Mlx5Device } from '../drivers/rdma/hw/mlx5/main.ts';
import { CORE_CLOCK_PGOFF, mlx5ResetRevoke, uarOffset } from '../drivers/rdma/hw/mlx5/mmap.ts';
import { join } from '../kernel/context.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Completion } from '../kernel/sync/completion.ts';
import type { Co, Task } from '../kernel/task.ts';
import { Errno, type ErrnoCode } from '../lib/errors.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../mm/constants.ts';
import { Machine } from '../mm/machine.ts';
import type { Mm } from '../mm/mm.ts';
import { mmap } from '../mm/mmap.ts';
import { mprotect } from '../mm/mprotect.ts';
import { mremap } from '../mm/mremap.ts';
import { munmap } from '../mm/munmap.ts';
import { createProcess, exitMm, forkProcess, type Process } from '../mm/process.ts';
import { type IoMapping, type TouchWorld, touchMapping } from './mmap-io-touch.ts';
import type { Scenario, ScenarioParams } from './scenario.ts';

const RW = PROT_READ | PROT_WRITE;
/** Pages of each process's device-memory allocation. */
const DM_PAGES = 2;
/** Kernel versions (×100) where the modelled behaviour changes; era takes one of them. */
const ERAS = [420, 501, 505, 506, 507, 612, 613] as const;
/** Errors a verbs call may meet once the device is being unplugged or reset. */
const GONE: readonly ErrnoCode[] = ['EIO', 'ENODEV'];

/**
 * `mmap-io-unplug`: processes map a device's doorbell page (read-write), device memory
 * (read-write, then split by mprotect and a partial munmap) and its clock page (read-only),
 * fork (the child touches its copies and maps the device memory again through the inherited
 * descriptor while the parent frees it), close the descriptor and exit, while the device is hot
 * unplugged (once every process has mapped) and, with `revoke=1`, a driver reset revokes every
 * mapping first. Each process moves its doorbell with mremap before the unplug (`mremap=1`) or
 * racing it (`mremap=2`). Every touch is checked against
 * what its VMA is due (I6); the oracles check that nothing maps the frames of a disassociated
 * file or of the unplugged device, that tracked VMAs are untracked before they are freed, and
 * that every mmap entry is freed once, with no reference taken after its removal.
 */
export const mmapIoUnplugScenario: Scenario = {
  name: 'mmap-io-unplug',
  description:
    'processes map doorbell, device-memory and clock pages, fork, split, mremap and exit while the device is hot unplugged (and reset)',
  params: [
    {
      name: 'era',
      description: `kernel version ×100 whose uverbs mmap code runs: ${ERAS.join(', ')} (the versions where it changed; 420 lacks the fault handler (M1), 505 and 506 keep the mmap entries of a process exiting during the unplug, so dealloc_ucontext WARNs, 613 has the disassociation_lock inversion)`,
      default: 612,
      min: 420,
      max: 613,
    },
    { name: 'procs', description: 'processes mapping the device', default: 2, min: 1, max: 4 },
    {
      name: 'revoke',
      description:
        '1: a driver reset revokes every mapping (rdma_user_mmap_disassociate) before the unplug; needs era=613',
      default: 0,
      min: 0,
      max: 1,
    },
    {
      name: 'mremap',
      description:
        'each process moves its doorbell mapping with mremap(MREMAP_FIXED): 0 never; 1 before the unplug may start; 2 later, racing it (exposes a kernel race: docs/findings/mremap-untracked-io-vma.md)',
      default: 1,
      min: 0,
      max: 2,
    },
  ],
  check(p: ScenarioParams): void {
    if (!(ERAS as readonly number[]).includes(p.era!))
      throw new Errno(
        'EINVAL',
        `parameter era of scenario mmap-io-unplug must be one of ${ERAS.join(', ')}, got ${p.era}`,
      );
    if (p.revoke === 1 && p.era! < 613)
      throw new Errno(
        'EINVAL',
        `parameter revoke of scenario mmap-io-unplug: revoke=1 needs era=613 (rdma_user_mmap_disassociate came in 6.13), got era=${p.era}`,
      );
  },
  build(k: Kernel, p: ScenarioParams): void {
    const machine = new Machine(k, { frames: 32 + 16 * p.procs! });
    installOracles(k, machine);
    const dev = new Mlx5Device(machine, { name: 'mlx5_0', era: p.era! });
    const w: World = {
      k,
      dev,
      revoked: false,
      checks: 0,
      mapped: new Completion('mapped'),
      mremap: p.mremap!,
    };
    registerOracle(k, {
      name: 'io-semantics',
      description:
        'each touch of device memory reads what its VMA is due: the device, the zero page, the dummy page or SIGBUS (I6)',
      rules: ['io-semantics'],
      checks: () => w.checks,
    });
    for (let i = 0; i < p.procs!; i++) {
      const proc = createProcess(machine);
      k.spawn(`user${i}`, () => userLife(w, proc, i));
    }
    k.spawn('unplug', function* () {
      for (let i = 0; i < p.procs!; i++) yield* w.mapped.wait();
      if (p.revoke === 1) {
        yield* mlx5ResetRevoke(dev);
        w.revoked = true;
      }
      yield* ibUnregisterDevice(dev);
      w.revoked = true;
    });
  },
};

interface World extends TouchWorld {
  readonly dev: Mlx5Device;
  /** Completed once per process whose mappings exist: the unplug starts after all of them. */
  readonly mapped: Completion;
  /** The mremap parameter: 0 none, 1 before the unplug, 2 racing it. */
  readonly mremap: number;
}

/** A process's descriptor, context, device memory and mappings. */
interface Mapped {
  readonly file: UverbsFile;
  readonly ctx: IbUcontext;
  readonly dm: IbDm;
  uar: IoMapping;
  dmMap: IoMapping;
  readonly clock: IoMapping;
}

/** `fn()`, or null when it failed with one of `codes` (the device went away under it). */
function* unless<T>(codes: readonly ErrnoCode[], fn: () => Co<T>): Co<T | null> {
  try {
    return yield* fn();
  } catch (e) {
    if (e instanceof Errno && codes.includes(e.code)) return null;
    throw e;
  }
}

function* setup(proc: Process, dev: Mlx5Device): Co<Mapped> {
  const file = yield* ibUverbsOpen(dev);
  const ctx = yield* ibUverbsGetContext(file, proc);
  const dm = yield* ibAllocDm(ctx, DM_PAGES);
  const uar = yield* ibMmap(proc, file, uarOffset(ctx), PAGE_SIZE, RW);
  const dmAt = yield* ibMmap(proc, file, dm.offset, DM_PAGES * PAGE_SIZE, RW);
  const clock = yield* ibMmap(proc, file, CORE_CLOCK_PGOFF * PAGE_SIZE, PAGE_SIZE, PROT_READ);
  return {
    file,
    ctx,
    dm,
    uar: { name: 'doorbell', addr: uar, pages: 1 },
    dmMap: { name: 'device memory', addr: dmAt, pages: DM_PAGES },
    clock: { name: 'clock', addr: clock, pages: 1 },
  };
}

/** mremap(MREMAP_FIXED) of the doorbell page onto a page reserved for it. */
function* moveDoorbell(mm: Mm, s: Mapped): Co {
  const to = yield* mmap(mm, {
    len: PAGE_SIZE,
    prot: PROT_NONE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS,
  });
  const at = yield* mremap(mm, s.uar.addr, PAGE_SIZE, PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  s.uar = { name: 'doorbell (moved)', addr: at, pages: 1 };
}

function* touchAll(w: World, proc: Process, maps: readonly IoMapping[], token: number): Co {
  for (const m of maps) yield* touchMapping(w, proc.mm!, m, token);
}

function* userLife(w: World, proc: Process, i: number): Co {
  const s = yield* setup(proc, w.dev);
  const mm = proc.mm!;
  if (w.mremap === 1) yield* moveDoorbell(mm, s);
  w.mapped.complete();
  const all = () => [s.uar, s.dmMap, s.clock];
  const token = 0x100 * (i + 1);
  yield* touchAll(w, proc, all(), token);
  const child = yield* forkProcess(proc);
  s.file.filp.get(); // the child inherits the descriptor
  const copies = all();
  const childTask = w.k.spawn(`child${i}`, () => childLife(w, child, s, copies, token + 0x80));
  yield* mprotect(mm, s.dmMap.addr + PAGE_SIZE, PAGE_SIZE, PROT_READ);
  yield* touchAll(w, proc, all(), token + 1);
  yield* munmap(mm, s.dmMap.addr, PAGE_SIZE);
  s.dmMap = { name: 'device memory (second half)', addr: s.dmMap.addr + PAGE_SIZE, pages: 1 };
  if (w.mremap === 2) yield* moveDoorbell(mm, s);
  yield* touchAll(w, proc, all(), token + 2);
  yield* unless(GONE, () => ibFreeDm(s.dm));
  yield* ibUverbsClose(s.file);
  yield* touchAll(w, proc, all(), token + 3);
  yield* join(childTask as Task<void>);
  yield* exitMm(proc);
}

/**
 * The child: touches its copies, maps the device memory again through the descriptor it
 * inherited (racing the parent's ibv_free_dm: EINVAL once the entry is removed), touches that,
 * exits and closes the descriptor.
 */
function* childLife(
  w: World,
  child: Process,
  s: Mapped,
  copies: readonly IoMapping[],
  token: number,
): Co {
  yield* touchAll(w, child, copies, token);
  const again = yield* unless([...GONE, 'EINVAL'], () =>
    mmap(child.mm!, {
      len: DM_PAGES * PAGE_SIZE,
      prot: RW,
      flags: MAP_SHARED,
      file: s.file.filp,
      offset: s.dm.offset,
    }),
  );
  if (again !== null)
    yield* touchMapping(
      w,
      child.mm!,
      { name: 'device memory (mapped by the child)', addr: again, pages: DM_PAGES },
      token + 1,
    );
  yield* exitMm(child);
  yield* s.file.filp.put();
}
