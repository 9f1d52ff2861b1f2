/**
 * Simulated kernel threads. A task runs a generator function; each `yield` is a point where
 * the scheduler may switch to another task, and the code between two yields is atomic.
 */

/**
 * A simulated-kernel code path that may sleep or be preempted: call it with `yield*`.
 * Plain helpers that never block stay ordinary functions.
 */
export type Co<T = void> = Generator<void, T, void>;

/** Something a task can wait on, for deadlock reports (the wait-for chain). */
export interface Waitable {
  /** A readable name, such as `mutex mm1.mmap_lock`. */
  readonly label: string;
  /** The tasks that must act for the waiter to proceed (lock owners, the joined task). */
  holders(): readonly Task[];
}

/** A lock as the runtime's bookkeeping sees it: an instance name and a lockdep class. */
export interface LockIdentity {
  /** Instance name for reports, e.g. `mm1.mmap_lock`. */
  readonly name: string;
  /** Lock class for lock-order checking, e.g. `mmap_lock`. */
  readonly lockClass: string;
}

/** One lock a task holds. */
export interface HeldLock {
  readonly lock: LockIdentity;
  readonly mode: 'read' | 'write';
}

/** Task states. */
export const RUNNABLE = 0;
export const BLOCKED = 1;
export const DONE = 2;

/**
 * A simulated kernel thread (`struct task_struct`), with its kernel context: the spinlocks and
 * other locks it holds, its non-blocking and SRCU read-side nesting, and its virtual time.
 */
export class Task<T = unknown> {
  /** Spawn order, from 0; decisions and replay tokens name tasks by it. */
  readonly id: number;
  readonly name: string;
  /** RUNNABLE, BLOCKED or DONE. */
  state = RUNNABLE;
  /** Virtual time of this task in ns. */
  time = 0;
  /** What the task is blocked on, for deadlock reports. */
  waitingOn: Waitable | null = null;
  /** Virtual-time deadline of a timed wait, or -1. */
  deadline = -1;
  /** Set when the last timed wait ended by its deadline rather than a wake-up. */
  timedOut = false;
  /** Atomic-context depth: spinlocks held and preempt_disable() sections (in_atomic()). */
  atomicDepth = 0;
  /** non_block_start() nesting. */
  nonBlockDepth = 0;
  /** SRCU read-side sections open. */
  srcuDepth = 0;
  /** lockdep_off() nesting: while positive, lockdep records and checks nothing for this task. */
  lockdepOff = 0;
  /** Locks held, in acquisition order. */
  readonly held: HeldLock[] = [];
  /** The result once DONE without error. */
  result: T | undefined = undefined;
  /** The thrown value if the task failed. */
  error: unknown = undefined;
  /** Tasks waiting in join(). */
  joiners: Task[] | null = null;
  /** Scheduling priority, used by the pct strategy. */
  priority = 0;
  /** @internal the generator being run */
  readonly gen: Co<T>;
  private localMap: Map<unknown, unknown> | null = null;

  constructor(id: number, name: string, gen: Co<T>, time: number) {
    this.id = id;
    this.name = name;
    this.gen = gen;
    this.time = time;
  }

  /** Task-local storage (the model's `current->...` fields), keyed by any value. */
  get locals(): Map<unknown, unknown> {
    this.localMap ??= new Map();
    return this.localMap;
  }

  /** Names of the locks held, for reports. */
  heldNames(): string[] {
    return this.held.map((h) => (h.mode === 'read' ? `${h.lock.name}(read)` : h.lock.name));
  }
}
