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

/**
 * A small cache of one address space's translations, evicting the oldest entry when full (a
 * Map keeps insertion order, so eviction is deterministic).
 */
export class TranslationCache {
  readonly name: string;
  readonly kind: CacheKind;
  readonly mm: Mm;
  readonly capacity: number;
  private readonly entries = new Map<number, CachedTranslation>();

  constructor(name: string, kind: CacheKind, mm: Mm, capacity: number) {
    this.name = name;
    this.kind = kind;
    this.mm = mm;
    this.capacity = capacity;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The translation of the page at `addr` (page aligned), if cached. */
  lookup(addr: number): CachedTranslation | undefined {
    return this.entries.get(addr / PAGE_SIZE);
  }

  /** Caches the translation a walk found in the present entry `pte` for an access (`write`). */
  fill(addr: number, pte: Pte, data: PageData, write: boolean): CachedTranslation {
    const vpn = addr / PAGE_SIZE;
    this.entries.delete(vpn);
    if (this.entries.size >= this.capacity) this.evictOldest();
    const t: CachedTranslation = {
      addr,
      pfn: ptePfn(pte),
      gen: pteGen(pte),
      data,
      writable: pte.writable && (pte.dirty || write),
    };
    this.entries.set(vpn, t);
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
    if (last - first <= this.entries.size) {
      for (let vpn = first; vpn < last; vpn++) if (this.entries.delete(vpn)) dropped++;
      return dropped;
    }
    for (const vpn of [...this.entries.keys()])
      if (vpn >= first && vpn < last) {
        this.entries.delete(vpn);
        dropped++;
      }
    return dropped;
  }

  /** The cached translations, oldest first (for reports and tests). */
  list(): CachedTranslation[] {
    return [...this.entries.values()];
  }

  private evictOldest(): void {
    const [vpn, t] = this.entries.entries().next().value as [number, CachedTranslation];
    this.entries.delete(vpn);
    const k = kernel();
    if (k.trace.on) k.trace.emit('tlb-drop', { tlb: this.name, mm: this.mm.id, addr: t.addr });
  }
}
