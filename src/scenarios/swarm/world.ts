// The state of a `swarm` world: one machine, its processes (each a region of checked pages),
// and how a thread makes an operation on a process's address space.
import type { DmirrorDevice } from '../../drivers/dmirror/device.ts';
import type { IbDevice } from '../../drivers/rdma/core/device.ts';
import { sleep } from '../../kernel/context.ts';
import type { Kernel } from '../../kernel/kernel.ts';
import type { Completion } from '../../kernel/sync/completion.ts';
import type { Co } from '../../kernel/task.ts';
import { isErrno } from '../../lib/errors.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import { mmput } from '../../mm/exit.ts';
import type { Machine } from '../../mm/machine.ts';
import type { Mm } from '../../mm/mm.ts';
import { mmgetNotZero } from '../../mm/mm-refs.ts';
import type { Process } from '../../mm/process.ts';
import type { IoMapping } from '../mmap-io-touch.ts';
import type { PageValues } from '../page-values.ts';
import type { IoDevice } from './mmapio-client.ts';
import type { SwarmPlan } from './plan.ts';

/** Virtual time between two steps of a thread, ns (short: every thread overlaps the others). */
export const STEP_NS = 2_000;

/**
 * What an operation may fail with when a racing one changed the range first: EFAULT (no VMA,
 * no permission, a reaped mm), ENOMEM (no VMA for mprotect/madvise/mremap, or no frame: the
 * model has no OOM killer), EAGAIN and EBUSY (a device gave up retrying).
 */
const RACE_ERRNOS = ['EFAULT', 'ENOMEM', 'EAGAIN', 'EBUSY'] as const;

/** One process of the world: its address space and the region its threads and clients use. */
export interface SwarmProc {
  readonly index: number;
  /** The process (task->mm is cleared when it exits); `mm` stays its address space. */
  readonly process: Process;
  readonly mm: Mm;
  readonly pages: number;
  /** Its clients subscribe the other way (PlannedProc.altSubscribe). */
  readonly altSubscribe: boolean;
  /** Where its pages start in the world's data model. */
  readonly first: number;
  /** The process mapped and filled its region. */
  readonly ready: Completion;
  base: number;
  /** The process dropped its own mm_users reference (the `exit` operation). */
  exited: boolean;
  /** Its device-IO mappings while its mmapio client is open (a forked child touches them). */
  ioMaps: readonly IoMapping[];
}

/** The world every thread shares. */
export interface SwarmWorld {
  readonly k: Kernel;
  readonly machine: Machine;
  readonly plan: SwarmPlan;
  /** The hmm_dmirror device the dmirror clients open, and the RDMA device (when one is used). */
  readonly dmirror: DmirrorDevice;
  readonly rdma: IbDevice | null;
  /** The device the mmapio clients map (when one is used). */
  readonly io: IoDevice | null;
  readonly values: PageValues;
  readonly procs: readonly SwarmProc[];
}

/** Address of page `page` of `proc`'s region. */
export function pageAddr(proc: SwarmProc, page: number): number {
  return proc.base + page * PAGE_SIZE;
}

/** True when `e` is an error a racing operation may legitimately cause. */
export function isRaceError(e: unknown): boolean {
  return RACE_ERRNOS.some((name) => isErrno(e, name));
}

/** `fn()`, or null when it failed with an error `expected` accepts (its step just fails). */
export function* orNull<T>(fn: () => Co<T>, expected: (e: unknown) => boolean): Co<T | null> {
  try {
    return yield* fn();
  } catch (e) {
    if (expected(e)) return null;
    throw e;
  }
}

/**
 * True when `e` is what a call the process makes may meet: a race's error, or EINVAL once the
 * process exited under it (a verbs call finds no task->mm).
 */
export function isProcessGone(proc: SwarmProc, e: unknown): boolean {
  return isRaceError(e) || (proc.exited && isErrno(e, 'EINVAL'));
}

/**
 * Runs `body` on `proc`'s address space as a thread of the process would: holding an
 * mm_users reference (none left, the process exited: the step is skipped), and ignoring the
 * errors a racing operation may cause. Then thinks for a step.
 */
export function* onMm(proc: SwarmProc, body: (mm: Mm) => Co): Co {
  if (mmgetNotZero(proc.mm)) {
    try {
      yield* body(proc.mm);
    } catch (e) {
      if (!isRaceError(e)) throw e;
    } finally {
      yield* mmput(proc.mm);
    }
  }
  yield* sleep(STEP_NS);
}

/** The value the step `id` writes in the `i`th page it writes (unique in the world). */
export function stepValue(id: number, i: number): number {
  return 10_000 + id * 8 + i;
}
