import { registerOracle } from '../check/oracles/registry.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { hex, PAGE_SIZE } from '../mm/constants.ts';

/**
 * The end-to-end data model of a scenario whose pages each hold one value in every int: for
 * each page, the set of values it may legitimately hold (the writer adds its value before it
 * writes; DONTNEED adds 0), and the pages that were unmapped (no longer checked). Every read,
 * by the CPU or a device, must find a whole page of one allowed value.
 */
export class PageValues {
  private readonly allowed: Set<number>[];
  private readonly gone = new Set<number>();
  private checks = 0;
  private readonly k: Kernel;

  constructor(k: Kernel, pages: number, initial: (page: number) => number) {
    this.k = k;
    this.allowed = Array.from({ length: pages }, (_, p) => new Set([initial(p)]));
    registerOracle(k, {
      name: 'data',
      description: 'every page read by the CPU or a device holds one value its writers put there',
      rules: ['data'],
      checks: () => this.checks,
    });
  }

  /** Declares that `page` may now hold `value` (call before writing it). */
  allow(page: number, value: number): void {
    this.allowed[page]?.add(value);
  }

  /** Declares `page` unmapped: its contents are no longer checked. */
  unmap(page: number): void {
    this.gone.add(page);
  }

  /**
   * Declares `page` mapped again, with fresh zero-filled memory (MAP_FIXED over a hole): it is
   * checked again, and may hold 0. Its old values stay allowed, as a racing reader may still
   * see the old frame.
   */
  revive(page: number): void {
    this.gone.delete(page);
    this.allowed[page]?.add(0);
  }

  isUnmapped(page: number): boolean {
    return this.gone.has(page);
  }

  /** Checks a page image read by `who` (the bytes of page `page`, in `bytes` at `offset`). */
  check(who: string, page: number, bytes: Uint8Array, offset: number): void {
    if (this.gone.has(page)) return;
    this.checks++;
    const ints = new Int32Array(bytes.buffer, bytes.byteOffset + offset, PAGE_SIZE / 4);
    const v = ints[0]!;
    for (let i = 1; i < ints.length; i++) {
      if (ints[i] !== v)
        this.k.bug(
          'data',
          `${who} read page ${page} with mixed values (${v} at int 0, ${ints[i]} at int ${i})`,
        );
    }
    if (!this.allowed[page]?.has(v)) {
      this.k.bug(
        'data',
        `${who} read ${v} in page ${page} (offset ${hex(page * PAGE_SIZE)}), expected one of ${[...(this.allowed[page] ?? [])].join(', ')}`,
      );
    }
  }
}

/** A page's worth of one int value. */
export function pageOf(value: number, pages = 1): Uint8Array {
  const bytes = new Uint8Array(pages * PAGE_SIZE);
  new Int32Array(bytes.buffer).fill(value);
  return bytes;
}
