import { lockAcquired, lockAttempt, lockContended, lockReleased, mightSleep } from '../context.ts';
import { current, kernel } from '../kernel.ts';
import type { Co, LockIdentity, Task, Waitable } from '../task.ts';

interface RwWaiter {
  readonly task: Task;
  readonly mode: 'read' | 'write';
  granted: boolean;
}

/**
 * struct rw_semaphore with Linux's writer preference: a new reader queues behind a waiting
 * writer, and a release hands the lock to the queue head in FIFO order (a writer alone, or the
 * run of readers up to the next writer). So a task that takes the read side twice while a
 * writer waits deadlocks, as it does in the kernel.
 */
export class RwSemaphore implements LockIdentity, Waitable {
  readonly name: string;
  readonly lockClass: string;
  private writer: Task | null = null;
  private readonly readers: Task[] = [];
  private readonly queue: RwWaiter[] = [];

  constructor(name: string, lockClass: string = name) {
    this.name = name;
    this.lockClass = lockClass;
  }

  get label(): string {
    return `rwsem ${this.name}`;
  }

  holders(): readonly Task[] {
    return this.writer !== null ? [this.writer] : this.readers;
  }

  /** down_read(). */
  *downRead(): Co {
    yield* this.acquire('read');
  }

  /** down_write(). */
  *downWrite(): Co {
    yield* this.acquire('write');
  }

  /** down_read_trylock(). */
  downReadTrylock(): boolean {
    return this.tryAcquire('read');
  }

  /** down_write_trylock(). */
  downWriteTrylock(): boolean {
    return this.tryAcquire('write');
  }

  /** up_read(). */
  upRead(): void {
    const t = current();
    const i = this.readers.indexOf(t);
    if (i < 0) this.misuse(t, 'up_read');
    this.readers.splice(i, 1);
    lockReleased(this, 'read');
    this.handOff();
  }

  /** up_write(). */
  upWrite(): void {
    const t = current();
    if (this.writer !== t) this.misuse(t, 'up_write');
    this.writer = null;
    lockReleased(this, 'write');
    this.handOff();
  }

  /** downgrade_write(): the writer becomes a reader without releasing; queued readers join. */
  downgradeWrite(): void {
    const t = current();
    if (this.writer !== t) this.misuse(t, 'downgrade_write');
    this.writer = null;
    lockReleased(this, 'write');
    this.readers.push(t);
    lockAcquired(this, 'read', false);
    this.handOff();
  }

  /** True when the running task holds the write side (mmap_assert_write_locked()). */
  isWriteLockedByCurrent(): boolean {
    return this.writer === current();
  }

  /** True when the running task holds either side (mmap_assert_locked()). */
  isLockedByCurrent(): boolean {
    const t = current();
    return this.writer === t || this.readers.includes(t);
  }

  /** rwsem_is_locked(). */
  isLocked(): boolean {
    return this.writer !== null || this.readers.length > 0;
  }

  private *acquire(mode: 'read' | 'write'): Co {
    mightSleep(`down_${mode}(${this.name})`);
    yield;
    const t = current();
    lockAttempt(this, mode, false);
    if (this.queue.length === 0 && this.free(mode)) {
      this.take(t, mode);
    } else {
      lockContended(this, mode);
      const w: RwWaiter = { task: t, mode, granted: false };
      this.queue.push(w);
      const k = kernel();
      while (!w.granted) {
        k.block(t, this);
        yield;
      }
    }
    lockAcquired(this, mode, false);
  }

  private tryAcquire(mode: 'read' | 'write'): boolean {
    if (this.queue.length > 0 || !this.free(mode)) return false;
    const t = current();
    lockAttempt(this, mode, true);
    this.take(t, mode);
    lockAcquired(this, mode, true);
    return true;
  }

  private free(mode: 'read' | 'write'): boolean {
    return this.writer === null && (mode === 'read' || this.readers.length === 0);
  }

  private take(t: Task, mode: 'read' | 'write'): void {
    if (mode === 'write') this.writer = t;
    else this.readers.push(t);
  }

  /** Grants the lock to the queue head: one writer, or every reader up to the next writer. */
  private handOff(): void {
    const k = kernel();
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (!this.free(head.mode)) return;
      this.queue.shift();
      this.take(head.task, head.mode);
      head.granted = true;
      k.wake(head.task);
      if (head.mode === 'write') return;
    }
  }

  private misuse(t: Task, op: string): never {
    const holder = this.writer ?? this.readers[0];
    const rule = holder === undefined ? 'unlock-not-held' : 'unlock-not-owner';
    const state =
      holder === undefined
        ? 'it is not held'
        : `it is held by ${this.holders()
            .map((h) => h.name)
            .join(', ')}`;
    return kernel().bug(rule, `${t.name} calls ${op} on ${this.label} but ${state}`);
  }
}
