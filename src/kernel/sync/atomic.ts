import type { Co } from '../task.ts';

/**
 * atomic_t / atomic_long_t: each operation is one indivisible step, preceded by a preemption
 * point, so racing read-modify-write sequences built from separate reads and writes show up.
 */
export class Atomic {
  readonly name: string;
  private v: number;

  constructor(name: string, initial = 0) {
    this.name = name;
    this.v = initial;
  }

  /** atomic_read(). */
  *read(): Co<number> {
    yield;
    return this.v;
  }

  /** atomic_set(). */
  *set(value: number): Co {
    yield;
    this.v = value;
  }

  /** atomic_add_return(). */
  *add(delta: number): Co<number> {
    yield;
    this.v += delta;
    return this.v;
  }

  /** atomic_inc_return(). */
  *inc(): Co<number> {
    return yield* this.add(1);
  }

  /** atomic_dec_return(). */
  *dec(): Co<number> {
    return yield* this.add(-1);
  }

  /** atomic_cmpxchg(): stores `next` if the value is `expected`; returns the old value. */
  *cmpxchg(expected: number, next: number): Co<number> {
    yield;
    const old = this.v;
    if (old === expected) this.v = next;
    return old;
  }

  /** atomic_xchg(). */
  *xchg(next: number): Co<number> {
    yield;
    const old = this.v;
    this.v = next;
    return old;
  }

  /** The value without a step, for oracles and final checks (not for simulated code). */
  peek(): number {
    return this.v;
  }
}
