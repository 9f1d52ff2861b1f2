import { charge } from '../cost/charge.ts';
import { bug } from '../kernel/kernel.ts';
import { WaitQueue } from '../kernel/sync/wait-queue.ts';
import { PageData } from './page-data.ts';

/**
 * A swap device: numbered slots holding page contents. A slot is taken when reclaim writes an
 * anonymous page out and given back when the page is swapped in or its PTE is zapped.
 */
export class SwapSpace {
  readonly capacity: number;
  private readonly slots = new Map<number, { data: PageData; refs: number }>();
  private nextSlot = 1;
  private readonly freeSlots: number[] = [];
  /**
   * Slots whose page reclaim still holds, locked in the swap cache: a swap-in waits for it
   * (do_swap_page() finds the folio and locks it), so it sees what the pageout wrote.
   */
  readonly inReclaim = new Set<number>();
  /** Where those swap-ins wait (folio_lock_or_retry()). */
  readonly cacheWait = new WaitQueue('swapcache');

  constructor(capacity = 1 << 20) {
    this.capacity = capacity;
  }

  /** Slots in use. */
  get used(): number {
    return this.slots.size;
  }

  /**
   * get_swap_page() + swap_writepage(): stores a copy of `data` in a slot with one reference,
   * the caller's (reclaim holds it for its unmap walk, as the swap cache does); null when swap
   * is full.
   */
  store(data: PageData): number | null {
    if (this.slots.size >= this.capacity) return null;
    const slot = this.freeSlots.pop() ?? this.nextSlot++;
    const copy = new PageData();
    copy.copyFrom(data);
    this.slots.set(slot, { data: copy, refs: 1 });
    return slot;
  }

  /** swap_writepage() to a slot already taken: its contents become a copy of `data`. */
  write(slot: number, data: PageData): void {
    this.entry(slot, 'swap_writepage').data.copyFrom(data);
  }

  /** swap_duplicate(): another PTE (a fork child) refers to the slot. */
  dup(slot: number): void {
    this.entry(slot, 'swap_duplicate').refs++;
  }

  /** swap_readpage(): copies the slot's contents into `into`. */
  read(slot: number, into: PageData): void {
    into.copyFrom(this.entry(slot, 'swap_readpage').data);
    charge('swap.in');
  }

  /** swap_free(): drops one reference; the last frees the slot. */
  free(slot: number): void {
    const e = this.entry(slot, 'swap_free');
    if (--e.refs > 0) return;
    this.slots.delete(slot);
    this.freeSlots.push(slot);
  }

  private entry(slot: number, op: string): { data: PageData; refs: number } {
    const e = this.slots.get(slot);
    if (e === undefined) bug('bad-swap', `${op} on swap slot ${slot} which is not in use`);
    return e;
  }
}
