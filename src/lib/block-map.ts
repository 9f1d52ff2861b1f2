/** Entries per block: one page-table page (a PMD's worth of PTEs). */
const BLOCK = 512;

/**
 * Entries by page number, kept as a map of 512-entry blocks (one per 2 MiB, like page-table
 * pages): memory grows with the pages present, not with the span. Page numbers of user
 * addresses reach 2^35, which a flat Map would key as heap numbers; block numbers stay small
 * integers, so a lookup is a small-int hash plus an array index. Iteration is in block
 * creation order, then page order.
 */
export class BlockMap<T> implements Iterable<[number, T]> {
  private readonly blocks = new Map<number, (T | undefined)[]>();
  private count = 0;

  /** Entries present. */
  get size(): number {
    return this.count;
  }

  get(n: number): T | undefined {
    const b = this.blocks.get(Math.floor(n / BLOCK));
    return b === undefined ? undefined : b[n % BLOCK];
  }

  has(n: number): boolean {
    return this.get(n) !== undefined;
  }

  set(n: number, value: T): void {
    const key = Math.floor(n / BLOCK);
    let b = this.blocks.get(key);
    if (b === undefined) {
      b = new Array<T | undefined>(BLOCK);
      this.blocks.set(key, b);
    }
    const i = n % BLOCK;
    if (b[i] === undefined) this.count++;
    b[i] = value;
  }

  delete(n: number): boolean {
    const key = Math.floor(n / BLOCK);
    const b = this.blocks.get(key);
    if (b === undefined) return false;
    const i = n % BLOCK;
    if (b[i] === undefined) return false;
    b[i] = undefined;
    this.count--;
    return true;
  }

  /** True when the block holding page number `n` has no entry (a PMD with no PTE). */
  blockEmpty(n: number): boolean {
    const b = this.blocks.get(Math.floor(n / BLOCK));
    return b === undefined || b.every((p) => p === undefined);
  }

  /** Page numbers with an entry. */
  *keys(): IterableIterator<number> {
    for (const [key, b] of this.blocks) {
      for (let i = 0; i < BLOCK; i++) if (b[i] !== undefined) yield key * BLOCK + i;
    }
  }

  *values(): IterableIterator<T> {
    for (const b of this.blocks.values()) for (const p of b) if (p !== undefined) yield p;
  }

  *[Symbol.iterator](): IterableIterator<[number, T]> {
    for (const [key, b] of this.blocks) {
      for (let i = 0; i < BLOCK; i++) {
        const p = b[i];
        if (p !== undefined) yield [key * BLOCK + i, p];
      }
    }
  }
}
