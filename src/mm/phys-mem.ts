import { bug, kernel } from '../kernel/kernel.ts';
import { HPAGE_PMD_NR } from './constants.ts';
import { Page, type PageKind } from './page.ts';

/** Options of the simulated physical memory. */
export interface PhysMemOptions {
  /** Frames the allocator manages (default 65,536 = 256 MiB). */
  readonly frames?: number;
  /**
   * The pfn of this machine's zero page; its frames follow it. Machines of one world get
   * disjoint ranges (see {@link PFN_SPAN}), so a pfn names one frame of one machine.
   */
  readonly pfnBase?: number;
}

/** Pfns each machine of a world may use: its zero page, then at most 2^32 − 1 frames. */
export const PFN_SPAN = 2 ** 32;

/**
 * Physical memory: the frames, the page allocator (a LIFO free list, so a freed frame is
 * reused soon and stale references show up), the shared zero page and the LRU that reclaim
 * scans. `frames` is a real limit: allocation fails when the free list is empty.
 */
export class PhysMem {
  readonly frames: number;
  /** The zero page's pfn; frame i is pfnBase + i + 1. */
  readonly pfnBase: number;
  /** ZERO_PAGE(0): shared, never freed, never written. Not one of the allocatable frames. */
  readonly zeroPage: Page;
  private readonly pages: Page[] = [];
  private readonly freeList: number[] = [];
  /** Frames on the LRU (mapped user pages and page-cache pages), in insertion order. */
  readonly lru = new Set<Page>();

  constructor(options: PhysMemOptions = {}) {
    this.frames = options.frames ?? 65_536;
    this.pfnBase = options.pfnBase ?? 0;
    for (let i = this.frames - 1; i >= 0; i--) this.freeList.push(this.pfnBase + i + 1);
    this.zeroPage = new Page(this.pfnBase);
    this.zeroPage.kind = 'zero';
    this.zeroPage.refcount = 1;
  }

  /** Free frames now. */
  get freeFrames(): number {
    return this.freeList.length;
  }

  /** Frames in use. */
  get usedFrames(): number {
    return this.frames - this.freeList.length;
  }

  private hugeZeroPages: Page[] | null = null;

  /**
   * The huge zero page (get_huge_zero_folio()): 512 read-only zero frames right after the
   * allocatable ones, made on first use and never freed (Linux frees it under memory pressure
   * once unused; the model keeps it, as it does the zero page).
   */
  hugeZero(): readonly Page[] {
    if (this.hugeZeroPages !== null) return this.hugeZeroPages;
    const k = kernel();
    const pages: Page[] = [];
    for (let i = 0; i < HPAGE_PMD_NR; i++) {
      const pfn = this.pfnBase + this.frames + 1 + i;
      const page = new Page(pfn);
      page.kind = 'zero';
      page.refcount = 1;
      page.gen = 1;
      this.pages[pfn - this.pfnBase] = page;
      pages.push(page);
      if (k.trace.on) k.trace.emit('page-alloc', { pfn, gen: 1, kind: 'zero' });
    }
    this.hugeZeroPages = pages;
    return pages;
  }

  /** ZONE_DEVICE pages of this machine by pfn (memremap_pages() gives them struct pages). */
  private readonly zoneDevice = new Map<number, Page>();

  /** The frame with this pfn (pfnBase is the zero page; device pages too), or undefined. */
  page(pfn: number): Page | undefined {
    if (pfn === this.pfnBase) return this.zeroPage;
    return this.pages[pfn - this.pfnBase] ?? this.zoneDevice.get(pfn);
  }

  /** memremap_pages(): device pages become reachable by pfn (free, refcount 0). */
  addZoneDevice(pages: readonly Page[]): void {
    for (const p of pages) this.zoneDevice.set(p.pfn, p);
  }

  /** memunmap_pages(): the device pages are gone. */
  removeZoneDevice(pages: readonly Page[]): void {
    for (const p of pages) this.zoneDevice.delete(p.pfn);
  }

  /**
   * zone_device_page_init(): the driver hands out a free device page; it gets refcount 1 and a
   * new generation, so stale references to its previous use are detectable.
   */
  initZoneDevicePage(page: Page): void {
    if (page.pgmap === null || page.kind !== 'free' || page.refcount !== 0)
      bug('bad-page', `zone_device_page_init of pfn ${page.pfn} which is not a free device page`);
    page.gen++;
    page.kind = 'device';
    page.refcount = 1;
    page.mapcount = 0;
    page.locked = false;
    page.zoneDeviceData = null;
    const k = kernel();
    if (k.trace.on) k.trace.emit('page-alloc', { pfn: page.pfn, gen: page.gen, kind: 'device' });
  }

  /** alloc_page(): a zeroed frame with refcount 1, or null when memory is exhausted. */
  alloc(kind: PageKind): Page | null {
    const pfn = this.freeList.pop();
    if (pfn === undefined) return null;
    let page = this.pages[pfn - this.pfnBase];
    if (page === undefined) {
      page = new Page(pfn);
      this.pages[pfn - this.pfnBase] = page;
    }
    page.gen++;
    page.kind = kind;
    page.refcount = 1;
    page.mapcount = 0;
    page.pins = 0;
    page.dirty = false;
    page.referenced = false;
    page.lazyfree = false;
    page.locked = false;
    page.mapping = null;
    page.index = 0;
    page.data.clear();
    const k = kernel();
    if (k.trace.on) k.trace.emit('page-alloc', { pfn, gen: page.gen, kind });
    return page;
  }

  /** get_page(). */
  get(page: Page): void {
    if (page.kind === 'zero') return;
    this.checkLive(page, 'get_page');
    page.refcount++;
  }

  /** put_page(): drops a reference; the last one returns the frame to the allocator. */
  put(page: Page): void {
    if (page.kind === 'zero') return;
    this.checkLive(page, 'put_page');
    page.refcount--;
    if (page.refcount > 0) return;
    if (page.mapcount > 0 || page.pins > 0) {
      bug(
        'bad-page',
        `freeing pfn ${page.pfn} with mapcount ${page.mapcount} and ${page.pins} pins`,
      );
    }
    this.lru.delete(page);
    page.kind = 'free';
    page.data.clear();
    const k = kernel();
    if (k.trace.on) k.trace.emit('page-free', { pfn: page.pfn, gen: page.gen });
    // free_zone_device_folio(): a device page goes back to its driver, not to the allocator.
    if (page.pgmap !== null) page.pgmap.pageFree(page);
    else this.freeList.push(page.pfn);
  }

  private checkLive(page: Page, op: string): void {
    if (page.kind === 'free' || page.refcount <= 0) {
      bug('use-after-free', `${op} on pfn ${page.pfn} which is free (refcount ${page.refcount})`);
    }
  }
}
