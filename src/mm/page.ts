import type { Co } from '../kernel/task.ts';
import type { VmFault } from './memremap.ts';
import { PageData } from './page-data.ts';

/** Who owns a frame's contents; 'device' is a ZONE_DEVICE device-private page in use. */
export type PageKind = 'free' | 'anon' | 'file' | 'zero' | 'kernel' | 'device';

/** One mapping of a frame: the reverse map entry (mm id, virtual address). */
export interface RmapEntry {
  readonly mm: RmapOwner;
  readonly addr: number;
}

/** The part of an address space the reverse map needs (avoids an import cycle with Mm). */
export interface RmapOwner {
  readonly id: number;
}

/** The part of a machine page locking needs (avoids an import cycle with Machine). */
export interface PageLockOwner {
  readonly pageLockWait: {
    waitEvent(condition: () => boolean): Co;
    wakeUpAll(): void;
  };
}

/** folio_lock(): takes the page lock, waiting while someone else holds it. */
export function* lockPage(machine: PageLockOwner, page: Page): Co {
  yield* machine.pageLockWait.waitEvent(() => !page.locked);
  page.locked = true;
}

/** folio_unlock(): drops the page lock and wakes those waiting for it. */
export function unlockPage(machine: PageLockOwner, page: Page): void {
  page.locked = false;
  machine.pageLockWait.wakeUpAll();
}

/** The part of a dev_pagemap a page needs (avoids an import cycle with memremap.ts). */
export interface DevPagemapRef {
  /** pgmap->owner: who may see these pages in place (hmm_range_fault's dev_private_owner). */
  readonly owner: unknown;
  /** free_zone_device_folio() → pgmap->ops->page_free(). */
  pageFree(page: Page): void;
  /** pgmap->ops->migrate_to_ram() for a CPU fault on `vmf.page`. */
  migrateToRam(vmf: VmFault): Co;
}

/** What a file page belongs to. */
export interface PageCacheOwner {
  readonly name: string;
}

/**
 * A physical frame (`struct page` / `struct folio` of order 0): reference and map counts, the
 * reverse map, state bits, and its contents. `gen` counts allocations of this frame, so a
 * stale reference (pfn, gen) to a freed or reused frame is detectable.
 */
export class Page {
  readonly pfn: number;
  /** Allocation generation: bumped each time the frame is allocated. */
  gen = 0;
  kind: PageKind = 'free';
  /** page_ref_count(). */
  refcount = 0;
  /** page_mapcount(): PTEs mapping the frame (the zero page is not counted). */
  mapcount = 0;
  /** FOLL_PIN / FOLL_LONGTERM pins (pinned pages are not reclaimed or migrated). */
  pins = 0;
  dirty = false;
  /** PG_referenced: second-chance bit for reclaim. */
  referenced = false;
  /** MADV_FREE'd: may be discarded by reclaim if still clean. */
  lazyfree = false;
  /** PG_locked. */
  locked = false;
  /** For file pages: the owning page cache and the page index in the file. */
  mapping: PageCacheOwner | null = null;
  index = 0;
  /** Reverse map: every PTE that maps this frame. */
  readonly rmap: RmapEntry[] = [];
  readonly data = new PageData();
  /**
   * page_pgmap(): the dev_pagemap of a ZONE_DEVICE page (null for system memory). Its last
   * put_page() hands the page back to the pgmap's owner instead of the allocator.
   */
  pgmap: DevPagemapRef | null = null;
  /** page->zone_device_data: the driver's (dmirror: the backing page, or the owning mirror). */
  zoneDeviceData: unknown = null;

  constructor(pfn: number) {
    this.pfn = pfn;
  }

  /** page_anon(). */
  get isAnon(): boolean {
    return this.kind === 'anon';
  }

  /** Adds a reverse-map entry (page_add_*_rmap()). */
  addRmap(mm: RmapOwner, addr: number): void {
    this.rmap.push({ mm, addr });
    this.mapcount++;
  }

  /** Removes a reverse-map entry (page_remove_rmap()). */
  removeRmap(mm: RmapOwner, addr: number): void {
    const i = this.rmap.findIndex((e) => e.mm === mm && e.addr === addr);
    if (i >= 0) {
      this.rmap.splice(i, 1);
      this.mapcount--;
    }
  }
}
