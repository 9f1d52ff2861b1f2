import type { Pte } from './pte.ts';

/** Entries per block: one page-table page (a PMD's worth of PTEs). */
const BLOCK = 512;

/**
 * The entries of one address space by virtual page number, as a map of 512-entry blocks (one
 * per 2 MiB, like page-table pages). Page numbers of user addresses reach 2^35, which a flat
 * Map would key as heap numbers; block numbers stay small integers, so a lookup is a small-int
 * hash plus an array index. Iteration is in block creation order, then address order.
 */
export class PageTable implements Iterable<[number, Pte]> {
  private readonly blocks = new Map<number, (Pte | undefined)[]>();
  private count = 0;

  /** Entries present. */
  get size(): number {
    return this.count;
  }

  get(vpn: number): Pte | undefined {
    const b = this.blocks.get(Math.floor(vpn / BLOCK));
    return b === undefined ? undefined : b[vpn % BLOCK];
  }

  has(vpn: number): boolean {
    return this.get(vpn) !== undefined;
  }

  set(vpn: number, pte: Pte): void {
    const key = Math.floor(vpn / BLOCK);
    let b = this.blocks.get(key);
    if (b === undefined) {
      b = new Array<Pte | undefined>(BLOCK);
      this.blocks.set(key, b);
    }
    const i = vpn % BLOCK;
    if (b[i] === undefined) this.count++;
    b[i] = pte;
  }

  delete(vpn: number): boolean {
    const key = Math.floor(vpn / BLOCK);
    const b = this.blocks.get(key);
    if (b === undefined) return false;
    const i = vpn % BLOCK;
    if (b[i] === undefined) return false;
    b[i] = undefined;
    this.count--;
    return true;
  }

  /** Page numbers with an entry. */
  *keys(): IterableIterator<number> {
    for (const [key, b] of this.blocks) {
      for (let i = 0; i < BLOCK; i++) if (b[i] !== undefined) yield key * BLOCK + i;
    }
  }

  *values(): IterableIterator<Pte> {
    for (const b of this.blocks.values()) for (const p of b) if (p !== undefined) yield p;
  }

  *[Symbol.iterator](): IterableIterator<[number, Pte]> {
    for (const [key, b] of this.blocks) {
      for (let i = 0; i < BLOCK; i++) {
        const p = b[i];
        if (p !== undefined) yield [key * BLOCK + i, p];
      }
    }
  }
}
