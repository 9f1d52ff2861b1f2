/**
 * A user process as the mm and drivers see it: the thread-group leader's pid (`tgid`), its
 * `task->mm` (cleared by exit_mm() before the last mmput()), and the resource limit drivers
 * charge pinned memory against (RLIMIT_MEMLOCK, CAP_IPC_LOCK).
 */
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { mmput } from './exit.ts';
import { fork } from './fork.ts';
import type { Machine } from './machine.ts';
import type { Mm } from './mm.ts';
import { mmget } from './mm-refs.ts';

/** MLOCK_LIMIT: the default RLIMIT_MEMLOCK, 8 MiB since 9dcc38e2813e (v5.16). */
export const MLOCK_LIMIT = 8 * 1024 * 1024;

/** Options of a new process. */
export interface ProcessOptions {
  /** RLIMIT_MEMLOCK in bytes (default {@link MLOCK_LIMIT}). */
  readonly rlimitMemlock?: number;
  /** CAP_IPC_LOCK: pinning is not limited by RLIMIT_MEMLOCK. */
  readonly capIpcLock?: boolean;
}

/** A process (`struct task_struct` of the thread-group leader, reduced to what drivers read). */
export class Process {
  readonly pid: number;
  readonly machine: Machine;
  /** task->mm: the address space, or null once the process has left it (exit_mm()). */
  mm: Mm | null;
  readonly rlimitMemlock: number;
  readonly capIpcLock: boolean;
  /** The process has exited: get_pid_task() no longer finds it. */
  exited = false;

  constructor(machine: Machine, mm: Mm, options: ProcessOptions = {}) {
    const limit = options.rlimitMemlock ?? MLOCK_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 0)
      throw new Errno('EINVAL', `rlimitMemlock must be a non-negative integer, got ${limit}`);
    this.pid = machine.allocPid();
    this.machine = machine;
    this.mm = mm;
    this.rlimitMemlock = limit;
    this.capIpcLock = options.capIpcLock ?? false;
    // The leak oracle counts the reference task->mm holds as the process's, not as a leak.
    machine.processes.push(this);
  }

  toString(): string {
    return `pid ${this.pid}`;
  }
}

/** A new process with a fresh, empty address space. */
export function createProcess(machine: Machine, options: ProcessOptions = {}): Process {
  return new Process(machine, machine.createMm(), options);
}

/** fork(): the child gets a copy of the address space and the parent's limits. */
export function* forkProcess(parent: Process): Co<Process> {
  if (parent.mm === null) throw new Errno('EINVAL', `fork of ${parent}, which has exited`);
  const mm = yield* fork(parent.mm);
  return new Process(parent.machine, mm, {
    rlimitMemlock: parent.rlimitMemlock,
    capIpcLock: parent.capIpcLock,
  });
}

/**
 * do_exit()'s exit_mm(): the task leaves its address space (task->mm = NULL, so get_task_mm()
 * fails from here on) and drops its mm_users reference, which tears the space down if it was
 * the last. The caller closes the process's files afterwards, as exit_files() does.
 */
export function* exitMm(p: Process): Co {
  const mm = p.mm;
  if (mm === null) throw new Errno('EINVAL', `${p} has already left its address space`);
  p.mm = null;
  yield* mmput(mm);
}

/** get_task_mm(): the process's address space with an mm_users reference, or null. */
export function getTaskMm(p: Process): Mm | null {
  const mm = p.mm;
  if (p.exited || mm === null) return null;
  mmget(mm);
  return mm;
}
