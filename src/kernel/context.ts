/**
 * Execution-context rules and the small task-level primitives: might_sleep(), preemption
 * points, non-blocking sections, virtual-time delays and sleeps, join.
 */
import { current, kernel } from './kernel.ts';
import {
  type Co,
  DONE,
  type HeldLock,
  type LockIdentity,
  type Task,
  type Waitable,
} from './task.ts';

/**
 * might_sleep(): raises `sleep-in-atomic` when the running task holds a spinlock, is in a
 * preempt-disabled section or inside non_block_start()/non_block_end().
 */
export function mightSleep(what: string): void {
  const t = current();
  if (t.atomicDepth > 0) {
    kernel().bug(
      'sleep-in-atomic',
      `sleeping function called from invalid context: ${what} while in atomic context (spinlock held)`,
    );
  }
  if (t.nonBlockDepth > 0) {
    kernel().bug(
      'sleep-in-atomic',
      `sleeping function called from invalid context: ${what} inside a non-blocking section`,
    );
  }
}

/** An explicit preemption point: another task may run here (cond_resched()/any CPU interleave). */
export function* preempt(): Co {
  yield;
}

/** non_block_start(): from here until {@link nonBlockEnd}, sleeping is a bug. */
export function nonBlockStart(): void {
  current().nonBlockDepth++;
}

/** non_block_end(). */
export function nonBlockEnd(): void {
  const t = current();
  if (t.nonBlockDepth === 0) kernel().bug('warn', 'non_block_end() without non_block_start()');
  t.nonBlockDepth--;
}

/**
 * lockdep_off(): the running task's lock acquisitions are neither checked nor recorded until
 * {@link lockdepOn}, for a known false positive (the kernel brackets those call sites the same
 * way).
 */
export function lockdepOff(): void {
  current().lockdepOff++;
}

/** lockdep_on(). */
export function lockdepOn(): void {
  const t = current();
  if (t.lockdepOff === 0) kernel().bug('warn', 'lockdep_on() without lockdep_off()');
  t.lockdepOff--;
}

/** preempt_disable(): enters atomic context without a lock. */
export function preemptDisable(): void {
  current().atomicDepth++;
}

/** preempt_enable(). */
export function preemptEnable(): void {
  const t = current();
  if (t.atomicDepth === 0) kernel().bug('warn', 'preempt_enable() without preempt_disable()');
  t.atomicDepth--;
}

/** True when the running task may sleep (not atomic, not in a non-blocking section). */
export function canSleep(): boolean {
  const t = current();
  return t.atomicDepth === 0 && t.nonBlockDepth === 0;
}

/** udelay()/ndelay(): spends `ns` of virtual time busy (allowed in atomic context). */
export function* delay(ns: number): Co {
  spend(ns);
  yield;
}

/** msleep()/usleep_range(): sleeps for `ns` of virtual time (may sleep: checked). */
export function* sleep(ns: number): Co {
  mightSleep('sleep');
  spend(ns);
  yield;
}

function spend(ns: number): void {
  if (!Number.isFinite(ns) || ns < 0)
    kernel().bug('warn', `delay of ${ns} ns: expected a finite non-negative duration`);
  const k = kernel();
  const t = current();
  t.time += ns;
  if (k.trace.on) k.trace.emit('delay', { ns });
}

/** The wait-for entry of a join. */
class JoinWait implements Waitable {
  readonly label: string;
  constructor(private readonly target: Task) {
    this.label = `task ${target.name} (join)`;
  }
  holders(): readonly Task[] {
    return [this.target];
  }
}

/** kthread_stop()-like join: sleeps until `task` finishes and returns its result. */
export function* join<T>(task: Task<T>): Co<T> {
  mightSleep('join');
  yield;
  const k = kernel();
  const me = current();
  if (task === me) k.bug('deadlock', `${me.name} joins itself`);
  if (task.state !== DONE) {
    task.joiners ??= [];
    task.joiners.push(me);
    k.block(me, new JoinWait(task));
    yield;
  }
  return task.result as T;
}

/**
 * @internal Lock bookkeeping shared by every lock type: the lock-order check on the attempt
 * (before waiting, as lockdep does), then the held list and trace on success or release.
 */
export function lockAttempt(lock: LockIdentity, mode: 'read' | 'write', trylock: boolean): void {
  const t = current();
  const problem = kernel().lockdep.check(t, lock, mode, trylock);
  if (problem !== null) kernel().bug(problem.rule, problem.detail);
}

/** @internal Records that the running task now holds `lock`. */
export function lockAcquired(lock: LockIdentity, mode: 'read' | 'write', trylock: boolean): void {
  const k = kernel();
  current().held.push({ lock, mode });
  if (k.trace.on) k.trace.emit('lock-acquire', { lock: lock.name, mode, trylock });
}

/** @internal Removes `lock` from the running task's held list; false when it was not held. */
export function lockReleased(lock: LockIdentity, mode: 'read' | 'write'): boolean {
  const k = kernel();
  const held = current().held;
  const i = lastIndexOf(held, lock, mode);
  if (i < 0) return false;
  // Locks are almost always released in reverse order: pop instead of splicing.
  if (i === held.length - 1) held.pop();
  else held.splice(i, 1);
  if (k.trace.on) k.trace.emit('lock-release', { lock: lock.name, mode });
  return true;
}

/** @internal Trace of a contended attempt. */
export function lockContended(lock: LockIdentity, mode: 'read' | 'write'): void {
  const k = kernel();
  if (k.trace.on) k.trace.emit('lock-contend', { lock: lock.name, mode });
}

function lastIndexOf(
  held: readonly HeldLock[],
  lock: LockIdentity,
  mode: 'read' | 'write',
): number {
  for (let i = held.length - 1; i >= 0; i--)
    if (held[i]!.lock === lock && held[i]!.mode === mode) return i;
  return -1;
}
