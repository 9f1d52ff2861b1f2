/**
 * A translation cache: a CPU's TLB or an IOMMU's IOTLB. It is filled by a walk of the CPU page
 * table and emptied only by a flush; a change of the page table alone does not reach it (no
 * hardware snoops PTE writes), which is why Linux flushes before it frees a frame.
 */
import { kernel } from '../kernel/kernel.ts';
import { PAGE_SIZE } from './constants.ts';
import type { Mm } from './mm.ts';
import type { PageData } from './page-data.ts';
import { type Pte, pteGen, ptePfn } from './pte.ts';

/** One cached translation of a page: the frame's bytes as they were reached at the walk. */
export interface CachedTranslation {
  readonly addr: number;
  readonly pfn: number;
  readonly gen: number;
  /** The frame's bytes (a freed and reused frame keeps the same block: a stale write lands there). */
  readonly data: PageData;
  /**
   * Writes need no walk: the entry was writable and already dirty when cached. x86 sets the
   * dirty bit with a walk, so a clean entry is cached read-only for the purpose of writes.
   */
  readonly writable: boolean;
}

/** Who owns a cache, for the trace: a CPU's TLB or a device's IOTLB. */
export type CacheKind = 'cpu' | 'iotlb';

/** The shape of a cache: `sets` sets of `ways` entries each. */
export interface CacheGeometry {
  readonly sets: number;
  readonly ways: number;
}

/**
 * A small set-associative cache of one address space's translations: a page can only sit in
 * the set its page number selects, and a fill into a full set replaces its ways in turn, the
 * oldest first (round robin; real cores use pseudo-LRU, which needs state on every hit).
 */
export class TranslationCache {
  readonly name: string;
  readonly kind: CacheKind;
  readonly mm: Mm;
  readonly sets: number;
  readonly ways: number;
  /** Page number held by each slot (set-major), -1 when empty. */
  private readonly tags: Float64Array;
  private readonly slots: (CachedTranslation | undefined)[];
  /** Per set, the way its next fill replaces when the set is full (round robin = oldest first). */
  private readonly victim: Uint8Array;
  private count = 0;

  constructor(name: string, kind: CacheKind, mm: Mm, geometry: CacheGeometry) {
    this.name = name;
    this.kind = kind;
    this.mm = mm;
    this.sets = geometry.sets;
    this.ways = geometry.ways;
    this.tags = new Float64Array(this.sets * this.ways).fill(-1);
    this.slots = new Array(this.sets * this.ways).fill(undefined);
    this.victim = new Uint8Array(this.sets);
  }

  /** Entries it can hold. */
  get capacity(): number {
    return this.sets * this.ways;
  }

  /** Entries it holds. */
  get size(): number {
    return this.count;
  }

  /** The translation of the page at `addr` (page aligned), if cached. */
  lookup(addr: number): CachedTranslation | undefined {
    const i = this.slotOf(addr / PAGE_SIZE);
    return i < 0 ? undefined : this.slots[i];
  }

  /** Caches the translation a walk found in the present entry `pte` for an access (`write`). */
  fill(addr: number, pte: Pte, data: PageData, write: boolean): CachedTranslation {
    const vpn = addr / PAGE_SIZE;
    let i = this.slotOf(vpn);
    if (i < 0) i = this.freeSlot(vpn);
    else this.count--;
    const t: CachedTranslation = {
      addr,
      pfn: ptePfn(pte),
      gen: pteGen(pte),
      data,
      writable: pte.writable && (pte.dirty || write),
    };
    this.tags[i] = vpn;
    this.slots[i] = t;
    this.count++;
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('tlb-fill', {
        tlb: this.name,
        kind: this.kind,
        mm: this.mm.id,
        addr,
        pfn: t.pfn,
        gen: t.gen,
        writable: t.writable,
      });
    return t;
  }

  /** Drops the translations of [start, end); returns how many. Emits nothing: the caller's flush event says it. */
  invalidate(start: number, end: number): number {
    // A partial page at either end is flushed whole.
    const first = Math.floor(start / PAGE_SIZE);
    const last = Math.ceil(end / PAGE_SIZE);
    let dropped = 0;
    if (last - first <= this.capacity) {
      for (let vpn = first; vpn < last; vpn++) {
        const i = this.slotOf(vpn);
        if (i >= 0) {
          this.clear(i);
          dropped++;
        }
      }
      return dropped;
    }
    for (let i = 0; i < this.tags.length; i++) {
      const vpn = this.tags[i]!;
      if (vpn >= first && vpn < last) {
        this.clear(i);
        dropped++;
      }
    }
    return dropped;
  }

  /** The cached translations, by set and way (for reports and tests). */
  list(): CachedTranslation[] {
    return this.slots.filter((t): t is CachedTranslation => t !== undefined);
  }

  private setOf(vpn: number): number {
    return vpn % this.sets;
  }

  /** The slot holding `vpn`, or -1. */
  private slotOf(vpn: number): number {
    const base = this.setOf(vpn) * this.ways;
    for (let w = 0; w < this.ways; w++) if (this.tags[base + w] === vpn) return base + w;
    return -1;
  }

  /** An empty way of `vpn`'s set, or (the set full) its oldest, evicted with a 'tlb-drop'. */
  private freeSlot(vpn: number): number {
    const set = this.setOf(vpn);
    const base = set * this.ways;
    for (let w = 0; w < this.ways; w++) if (this.tags[base + w] === -1) return base + w;
    const i = base + this.victim[set]!;
    this.victim[set] = (this.victim[set]! + 1) % this.ways;
    const old = this.slots[i]!;
    this.clear(i);
    const k = kernel();
    if (k.trace.on) k.trace.emit('tlb-drop', { tlb: this.name, mm: this.mm.id, addr: old.addr });
    return i;
  }

  private clear(i: number): void {
    this.tags[i] = -1;
    this.slots[i] = undefined;
    this.count--;
  }
}
