/**
 * dmirror's device memory (lib/test_hmm.c): dmirror_allocate_chunk(), dmirror_devmem_alloc_page(),
 * dmirror_devmem_free(), dmirror_device_evict_chunk() and dmirror_device_remove_chunks().
 * Device-private pages are fake: each in use has a backing system page (the rpage) that holds
 * its data and points at the mirror that migrated it.
 */

import type { Co } from '../../kernel/task.ts';
import { Errno } from '../../lib/errors.ts';
import { HPAGE_PMD_NR } from '../../mm/constants.ts';
import type { Machine } from '../../mm/machine.ts';
import { DevPagemap, type DevPagemapOps } from '../../mm/memremap.ts';
import {
  type MigrateDst,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDeviceRange,
} from '../../mm/migrate-device.ts';
import type { Page } from '../../mm/page.ts';
import type { PageData } from '../../mm/page-data.ts';

/** DEVMEM_CHUNK_SIZE: 256 MiB of device pages per memremap_pages() call. */
export const DEVMEM_CHUNK_PAGES = 65_536;
/** DEVMEM_CHUNKS_RESERVE: chunks one device may add. */
export const DEVMEM_CHUNKS_MAX = 16;

/** The device memory of one dmirror device: its chunks and their free pages. */
export class DmirrorDevmem {
  private readonly machine: Machine;
  /** pgmap->owner of every chunk: the device (dmirror's mdevice). */
  private readonly owner: unknown;
  private readonly ops: DevPagemapOps;
  readonly chunks: DevPagemap[] = [];
  /** Pages freed back to the device, reused first (mdevice->free_pages). */
  private readonly free: Page[] = [];
  /** Pages of the newest chunk never handed out yet. */
  private fresh = 0;
  /** mdevice->calloc / cfree: pages allocated and freed. */
  calloc = 0;
  cfree = 0;

  constructor(machine: Machine, owner: unknown, migrateToRam: DevPagemapOps['migrateToRam']) {
    this.machine = machine;
    this.owner = owner;
    this.ops = {
      pageFree: (page) => this.pageFree(page),
      migrateToRam,
    };
  }

  /**
   * dmirror_devmem_alloc_page(): a backing system page, then a device page (from the free list,
   * or a new chunk), initialised with refcount 1 and locked for the migration; the backing
   * page records `mirror` (rpage->zone_device_data). Null when no system page or no more chunks.
   */
  *allocPage(mirror: object): Co<Page | null> {
    const rpage = yield* this.machine.allocPage('kernel');
    if (rpage === null) return null;
    const dpage = this.takeFree();
    if (dpage === null) {
      this.machine.phys.put(rpage);
      return null;
    }
    this.machine.phys.initZoneDevicePage(dpage);
    rpage.zoneDeviceData = mirror;
    dpage.zoneDeviceData = rpage;
    dpage.locked = true;
    this.calloc++;
    return dpage;
  }

  /**
   * dmirror_devmem_alloc_page() of order 9: a device THP, 512 device pages each with its backing
   * page (Linux takes one from the PMD-sized free list; the model's pages need not be
   * contiguous). Null, with nothing held, when any of them cannot be had.
   */
  *allocHuge(mirror: object): Co<Page[] | null> {
    const pages: Page[] = [];
    for (let i = 0; i < HPAGE_PMD_NR; i++) {
      const page = yield* this.allocPage(mirror);
      if (page !== null) {
        pages.push(page);
        continue;
      }
      for (const p of pages) {
        p.locked = false;
        this.machine.phys.put(p);
      }
      return null;
    }
    return pages;
  }

  private takeFree(): Page | null {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    let chunk = this.chunks[this.chunks.length - 1];
    if (chunk === undefined || this.fresh >= chunk.count) {
      if (this.chunks.length >= DEVMEM_CHUNKS_MAX) return null;
      chunk = new DevPagemap(this.machine, this.owner, DEVMEM_CHUNK_PAGES, this.ops);
      this.chunks.push(chunk);
      this.fresh = 0;
    }
    return chunk.pageAt(this.fresh++);
  }

  /** dmirror_devmem_free(): the rpage is freed; the page goes back on the free list. */
  private pageFree(page: Page): void {
    const rpage = page.zoneDeviceData as Page | null;
    if (rpage !== null) this.machine.phys.put(rpage);
    this.cfree++;
    if (page.pgmap instanceof DevPagemap && !page.pgmap.isRemoved) this.free.push(page);
  }

  /**
   * dmirror_device_evict_chunk(): every page of the chunk in use, whatever maps it, is moved
   * to a new system page with its data (the allocation must not fail: ENOMEM if it does).
   */
  *evict(chunk: DevPagemap): Co {
    const src = yield* migrateDeviceRange(this.machine, chunk.pages);
    const dst: (MigrateDst | null)[] = src.map(() => null);
    let failed = false;
    for (let i = 0; i < src.length; i++) {
      const s = src[i]!;
      if (s.page === null || !s.migrate) continue;
      const page = yield* this.machine.allocPage('anon');
      if (page === null) {
        failed = true;
        continue;
      }
      page.locked = true;
      page.data.copyFrom(backing(s.page));
      dst[i] = { page, write: s.write };
    }
    migrateDevicePages(src, dst);
    yield* migrateDeviceFinalize(this.machine, src, dst);
    if (failed) throw new Errno('ENOMEM', 'dmirror: no system page to evict device memory to');
  }

  /**
   * dmirror_device_remove_chunks(): each chunk is evicted and unmapped (memunmap_pages() waits
   * for the last references); the free lists are emptied and later allocations add new chunks.
   */
  *removeChunks(): Co {
    while (this.chunks.length > 0) {
      const chunk = this.chunks[0]!;
      yield* this.evict(chunk);
      yield* chunk.unmap();
      this.chunks.shift();
    }
    this.free.length = 0;
    this.fresh = 0;
    this.calloc = 0;
    this.cfree = 0;
  }

  /** Evicts the pages in use of every chunk (dmirror_fops_release()). */
  *evictAll(): Co {
    for (const chunk of [...this.chunks]) yield* this.evict(chunk);
  }
}

/** The data of a device page in use: its backing page's (BACKING_PAGE()). */
export function backing(dpage: Page): PageData {
  const rpage = dpage.zoneDeviceData as Page | null;
  if (rpage === null) throw new Errno('EFAULT', `device pfn ${dpage.pfn} has no backing page`);
  return rpage.data;
}
