/**
 * Pinned umems (drivers/infiniband/core/umem.c: ib_umem_get / ib_umem_release without
 * IB_ACCESS_ON_DEMAND): every page of the region is long-term pinned at registration, charged
 * to the owner's locked memory (mm->pinned_vm against RLIMIT_MEMLOCK), and kept until the MR is
 * deregistered, whatever the process does to its mappings meanwhile.
 */
import type { Co } from '../../../kernel/task.ts';
import { Errno } from '../../../lib/errors.ts';
import { hex, PAGE_SIZE } from '../../../mm/constants.ts';
import { getUserPages, unpinUserPages } from '../../../mm/gup.ts';
import type { Mm } from '../../../mm/mm.ts';
import { mmdrop, mmgrab } from '../../../mm/mm-refs.ts';
import type { Page } from '../../../mm/page.ts';
import type { Process } from '../../../mm/process.ts';
import { GUP_CHUNK_PAGES } from './umem-odp-2014.ts';

/** struct ib_umem of a pinned region. */
export class IbUmem {
  readonly kind = 'pinned';
  readonly address: number;
  readonly length: number;
  /** Page-aligned bounds. */
  readonly start: number;
  readonly end: number;
  readonly writable: boolean;
  /** umem->owning_mm, held by mmgrab() until release. */
  readonly owningMm: Mm;
  /** The pinned pages, one per PAGE_SIZE of [start, end). */
  readonly pages: Page[];
  /** Each page's allocation generation when it was pinned (the frame the device holds). */
  readonly gens: number[];
  released = false;

  constructor(mm: Mm, address: number, length: number, writable: boolean, pages: Page[]) {
    this.owningMm = mm;
    this.address = address;
    this.length = length;
    this.start = address - (address % PAGE_SIZE);
    this.end = Math.ceil((address + length) / PAGE_SIZE) * PAGE_SIZE;
    this.writable = writable;
    this.pages = pages;
    this.gens = pages.map((p) => p.gen);
  }

  get npages(): number {
    return this.pages.length;
  }
}

/**
 * ib_umem_get(): pins [addr, addr + length) of the caller's mm with FOLL_LONGTERM (and
 * FOLL_WRITE when writable), after charging the pages to mm->pinned_vm. ENOMEM past
 * RLIMIT_MEMLOCK (unless CAP_IPC_LOCK) or when memory cannot be had; EFAULT where nothing is
 * mapped; EINVAL for a caller without an address space. All or nothing.
 */
export function* ibUmemGet(
  caller: Process,
  addr: number,
  length: number,
  writable: boolean,
): Co<IbUmem> {
  const mm = caller.mm;
  if (mm === null) throw new Errno('EINVAL', `registration by ${caller}, which has no mm`);
  const start = addr - (addr % PAGE_SIZE);
  const npages = (Math.ceil((addr + length) / PAGE_SIZE) * PAGE_SIZE - start) / PAGE_SIZE;
  const limit = Math.floor(caller.rlimitMemlock / PAGE_SIZE);
  if (mm.pinnedVm + npages > limit && !caller.capIpcLock)
    throw new Errno(
      'ENOMEM',
      `pinning ${npages} pages at ${hex(addr)} would exceed RLIMIT_MEMLOCK (${limit} pages, ${mm.pinnedVm} pinned)`,
    );
  mm.pinnedVm += npages;
  mmgrab(mm);
  const pages: Page[] = [];
  try {
    for (let done = 0; done < npages; done += GUP_CHUNK_PAGES) {
      const n = Math.min(GUP_CHUNK_PAGES, npages - done);
      yield* mm.mmapLock.downRead();
      try {
        pages.push(
          ...(yield* getUserPages(mm, start + done * PAGE_SIZE, n, {
            write: writable,
            longterm: true,
          })),
        );
      } finally {
        mm.mmapLock.upRead();
      }
    }
  } catch (e) {
    unpinUserPages(mm.machine, pages, { longterm: true });
    mm.pinnedVm -= npages;
    mmdrop(mm);
    throw e;
  }
  return new IbUmem(mm, addr, length, writable, pages);
}

/** ib_umem_release(): unpins (dirtying what the device could write) and uncharges. */
export function ibUmemRelease(umem: IbUmem): void {
  if (umem.released) throw new Errno('EINVAL', 'umem released twice');
  umem.released = true;
  const mm = umem.owningMm;
  unpinUserPages(mm.machine, umem.pages, { longterm: true, dirty: umem.writable });
  mm.pinnedVm -= umem.npages;
  mmdrop(mm);
}
