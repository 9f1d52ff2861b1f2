/**
 * The one seeded pseudo-random generator of the model (xorshift32). Every choice a strategy
 * makes comes from here, never from a real random source, so the same seed gives the same run.
 */
export class Prng {
  private state: number;

  /** A generator seeded with a 32-bit integer; 0 is mapped to a fixed non-zero seed. */
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  /** The next 32-bit unsigned value. */
  nextU32(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  /** A float in [0, 1). */
  nextFloat(): number {
    return this.nextU32() / 4294967296;
  }

  /** An integer in [0, n) for 0 < n ≤ 2^32. */
  below(n: number): number {
    return Math.floor(this.nextFloat() * n);
  }
}
