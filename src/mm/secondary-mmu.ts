import { kernel } from '../kernel/kernel.ts';
import { PAGE_SIZE } from './constants.ts';
import type { Mm } from './mm.ts';
import { type Pte, pteGen, ptePfn } from './pte.ts';

/** One device translation: the frame (pfn and allocation generation) and the right to write. */
export interface DeviceTranslation {
  readonly pfn: number;
  readonly gen: number;
  readonly writable: boolean;
  /** An atomic-access entry (over a device-exclusive CPU entry; dmirror's ATOMIC tag). */
  readonly atomic?: boolean;
}

/** The frame a CPU entry maps, as a device would record it when it mirrors the entry. */
export function snapshotPte(pte: Pte): DeviceTranslation {
  return { pfn: ptePfn(pte), gen: pteGen(pte), writable: pte.writable };
}

/**
 * The secondary-MMU reporting interface: a device page table that mirrors one or more
 * address spaces. Every driver keeps its translations here (or reports through it), so the
 * coherence oracle can watch any device without knowing the driver: `map` when the device
 * commits a translation, `unmap` when it drops one, `access` when the device uses one.
 */
export class SecondaryMmu {
  readonly name: string;
  /**
   * Whether the region this table translates may be written by the device at all (an RDMA
   * MR registered without write access is not): a writable translation in a read-only region
   * breaks the permission rule.
   */
  readonly regionWritable: boolean;
  private readonly table = new Map<Mm, Map<number, DeviceTranslation>>();

  constructor(name: string, options: { regionWritable?: boolean } = {}) {
    this.name = name;
    this.regionWritable = options.regionWritable ?? true;
  }

  /** Commits a translation of `addr` (page aligned) built from a CPU entry snapshot. */
  map(mm: Mm, addr: number, t: DeviceTranslation): void {
    let pages = this.table.get(mm);
    if (pages === undefined) {
      pages = new Map();
      this.table.set(mm, pages);
    }
    pages.set(addr / PAGE_SIZE, t);
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('dev-map', {
        dev: this.name,
        mm: mm.id,
        addr,
        pfn: t.pfn,
        gen: t.gen,
        writable: t.writable,
        regionWritable: this.regionWritable,
      });
  }

  /** The translation of `addr`, if any. */
  lookup(mm: Mm, addr: number): DeviceTranslation | undefined {
    return this.table.get(mm)?.get(Math.floor(addr / PAGE_SIZE));
  }

  /** Drops the translations in [start, end); returns how many there were. */
  unmapRange(mm: Mm, start: number, end: number): number {
    const pages = this.table.get(mm);
    if (pages === undefined || pages.size === 0) return 0;
    const first = Math.floor(start / PAGE_SIZE);
    const last = Math.ceil(end / PAGE_SIZE);
    const k = kernel();
    let n = 0;
    const drop = (vpn: number) => {
      if (!pages.delete(vpn)) return;
      n++;
      if (k.trace.on)
        k.trace.emit('dev-unmap', { dev: this.name, mm: mm.id, addr: vpn * PAGE_SIZE });
    };
    if (last - first <= pages.size) for (let v = first; v < last; v++) drop(v);
    else
      for (const v of [...pages.keys()].sort((a, b) => a - b)) if (v >= first && v < last) drop(v);
    return n;
  }

  /** Drops every translation of `mm`. */
  unmapAll(mm: Mm): number {
    return this.unmapRange(mm, 0, Number.MAX_SAFE_INTEGER);
  }

  /** The device reads or writes through its translation of `addr`. */
  access(mm: Mm, addr: number, write: boolean): void {
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('dev-access', {
        dev: this.name,
        mm: mm.id,
        addr: addr - (addr % PAGE_SIZE),
        write,
      });
  }

  /**
   * A translation-table update is posted to the device (it is in flight until
   * {@link endUpdate}): at most one may be in flight per table (a UMR to one mkey).
   */
  beginUpdate(): void {
    const k = kernel();
    if (k.trace.on) k.trace.emit('dev-update', { dev: this.name, phase: 'begin' });
  }

  /** The update posted by {@link beginUpdate} completed. */
  endUpdate(): void {
    const k = kernel();
    if (k.trace.on) k.trace.emit('dev-update', { dev: this.name, phase: 'end' });
  }

  /**
   * The driver migrates [start, end) of `mm` itself (migrate_vma_setup() with its owner, whose
   * MIGRATE invalidation it skips): until {@link endOwnMigration} it updates this table's
   * translations of the range on its own.
   */
  beginOwnMigration(mm: Mm, start: number, end: number): void {
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('dev-own-migrate', { dev: this.name, mm: mm.id, start, end, phase: 'begin' });
  }

  /** The migration begun by {@link beginOwnMigration} is finalized. */
  endOwnMigration(mm: Mm, start: number, end: number): void {
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('dev-own-migrate', { dev: this.name, mm: mm.id, start, end, phase: 'end' });
  }

  /** The table is destroyed: no translation may remain, and nothing may use or update it. */
  retire(): void {
    const k = kernel();
    if (k.trace.on) k.trace.emit('dev-retire', { dev: this.name });
  }

  /** The device reads or writes a frame it holds a reference to (no CPU entry is mirrored). */
  dma(pfn: number, gen: number, write: boolean): void {
    const k = kernel();
    if (k.trace.on) k.trace.emit('dev-dma', { dev: this.name, pfn, gen, write });
  }

  /** Translations held for `mm`. */
  count(mm: Mm): number {
    return this.table.get(mm)?.size ?? 0;
  }
}
