/**
 * ZONE_DEVICE memory (mm/memremap.c) of type MEMORY_DEVICE_PRIVATE: memremap_pages() gives a
 * driver's memory struct pages the CPU cannot map; memunmap_pages() waits for their last
 * reference. The driver's dev_pagemap_ops free a page (page_free) and move a page back to
 * system memory on a CPU fault (migrate_to_ram).
 */
import { bug } from '../kernel/kernel.ts';
import { WaitQueue } from '../kernel/sync/wait-queue.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import type { Machine } from './machine.ts';
import { type DevPagemapRef, Page } from './page.ts';
import type { Vma } from './vma.ts';

/** struct vm_fault, as migrate_to_ram() sees it. */
export interface VmFault {
  readonly vma: Vma;
  /** The faulting address, page aligned. */
  readonly addr: number;
  /** The device page the entry named; the fault holds it locked and referenced. */
  readonly page: Page;
  readonly write: boolean;
}

/** struct dev_pagemap_ops, for device-private memory. */
export interface DevPagemapOps {
  /** ->page_free(): the page's last reference went; the driver takes it back. */
  pageFree(page: Page): void;
  /**
   * ->migrate_to_ram(): a CPU touched a device-private entry; move the page (at least) back to
   * system memory. An error becomes the fault's (VM_FAULT_SIGBUS / VM_FAULT_OOM).
   */
  migrateToRam(vmf: VmFault): Co;
}

/** Most pages one memremap_pages() call maps: 256 MiB, dmirror's chunk size. */
export const DEV_PAGEMAP_MAX_PAGES = 65_536;

/**
 * struct dev_pagemap (MEMORY_DEVICE_PRIVATE): `count` device pages with pfns of their own,
 * free (refcount 0) until the driver initialises one with PhysMem.initZoneDevicePage().
 */
export class DevPagemap implements DevPagemapRef {
  readonly machine: Machine;
  readonly owner: unknown;
  readonly ops: DevPagemapOps;
  /** The first pfn; the pgmap spans `count` pfns from it. */
  readonly first: number;
  readonly count: number;
  /** The struct pages used so far (made on first use: a 256 MiB chunk is 65,536 of them). */
  private readonly made: Page[] = [];
  /** Where memunmap_pages() waits for the pages' last references. */
  private readonly freed = new WaitQueue('pgmap-ref');
  private removed = false;

  /** memremap_pages(): `count` device pages owned by `owner`. */
  constructor(machine: Machine, owner: unknown, count: number, ops: DevPagemapOps) {
    if (!Number.isSafeInteger(count) || count < 1 || count > DEV_PAGEMAP_MAX_PAGES)
      throw new Errno(
        'EINVAL',
        `memremap_pages: ${String(count)} pages (1 to ${DEV_PAGEMAP_MAX_PAGES})`,
      );
    this.machine = machine;
    this.owner = owner;
    this.ops = ops;
    this.first = machine.allocDevicePrivatePfns(count);
    this.count = count;
  }

  /** The device page at index `i` (free, refcount 0, until the driver initialises it). */
  pageAt(i: number): Page {
    if (!Number.isInteger(i) || i < 0 || i >= this.count || this.removed)
      throw new Errno('EINVAL', `dev_pagemap: no page ${String(i)} of ${this.count}`);
    for (let j = this.made.length; j <= i; j++) {
      const p = new Page(this.first + j);
      p.pgmap = this;
      this.made.push(p);
      this.machine.phys.addZoneDevice([p]);
    }
    return this.made[i]!;
  }

  /** The pages used so far, by pfn. */
  get pages(): readonly Page[] {
    return this.made;
  }

  /** Whether memunmap_pages() has begun: the driver keeps no free pages of it. */
  get isRemoved(): boolean {
    return this.removed;
  }

  pageFree(page: Page): void {
    this.ops.pageFree(page);
    page.zoneDeviceData = null;
    this.freed.wakeUpAll();
  }

  /**
   * pgmap->ops->migrate_to_ram(). The page must still be in use: a fault that reached it
   * without holding it (the bug 16ce101db85d fixed) may find it freed, its driver data gone.
   */
  *migrateToRam(vmf: VmFault): Co {
    const page = vmf.page;
    if (page.kind !== 'device' || page.refcount === 0)
      bug(
        'use-after-free',
        `migrate_to_ram() on device pfn ${page.pfn}, which a concurrent migration freed`,
      );
    yield* this.ops.migrateToRam(vmf);
  }

  /**
   * memunmap_pages(): kills the pgmap's reference and waits until no page holds one (a CPU
   * fault's or a migration's), then the pfns stop naming pages.
   */
  *unmap(): Co {
    if (this.removed) throw new Errno('EINVAL', 'memunmap_pages: the pgmap is already gone');
    this.removed = true;
    yield* this.freed.waitEvent(() => this.made.every((p) => p.refcount === 0));
    this.machine.phys.removeZoneDevice(this.made);
  }
}

/** is_device_private_page(). */
export function isDevicePrivatePage(page: Page | null): page is Page {
  return page !== null && page.pgmap !== null;
}
