/**
 * get_user_pages() / pin_user_pages() (mm/gup.c): walks the page table of a range, faulting in
 * what is missing (a write breaks COW first), and takes a reference — and with FOLL_PIN a pin —
 * on each page. Pinned pages are neither reclaimed nor migrated.
 */
import { bug } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { hex, PAGE_SIZE, pageAligned, TASK_SIZE } from './constants.ts';
import { handleMmFault, segv } from './fault.ts';
import type { Machine } from './machine.ts';
import { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { Page } from './page.ts';
import type { Vma } from './vma.ts';

/** gup_flags of interest. */
export interface GupOptions {
  /** FOLL_WRITE: the caller will write; write-protected entries are faulted (COW broken). */
  readonly write?: boolean;
  /** FOLL_PIN (pin_user_pages()): each page also gets a pin. */
  readonly pin?: boolean;
  /** FOLL_LONGTERM: a long-lived pin (RDMA, VFIO); implies FOLL_PIN. */
  readonly longterm?: boolean;
}

/** Faults retried per page before giving up (Linux retries while no fatal signal is pending). */
const MAX_TRIES = 1000;

function flag(options: object, name: string): boolean {
  const v = (options as Record<string, unknown>)[name];
  if (v === undefined) return false;
  if (typeof v !== 'boolean')
    throw new Errno('EINVAL', `getUserPages: option ${name} must be a boolean, got ${typeof v}`);
  return v;
}

/**
 * get_user_pages() (FOLL_GET) or, with `pin`/`longterm`, pin_user_pages() (FOLL_PIN): the
 * `npages` pages from `start`. The caller holds mmap_lock (read or write). Each returned page
 * has one more reference (and one more pin with FOLL_PIN); release them with
 * {@link unpinUserPages}. All or nothing: on error every reference taken is dropped.
 *
 * Errors: EINVAL for an unaligned start, a non-positive or unsafe count, or a range that
 * overflows; EFAULT past TASK_SIZE, where no VMA maps an address, on VM_IO/VM_PFNMAP, for a
 * write without VM_WRITE or a read without VM_READ, on a device pfn without a struct page,
 * and for FOLL_LONGTERM|FOLL_WRITE of a shared file mapping (writable_file_mapping_allowed()).
 */
export function* getUserPages(
  mm: Mm,
  start: number,
  npages: number,
  options: GupOptions = {},
): Co<Page[]> {
  if (!(mm instanceof Mm)) throw new Errno('EINVAL', 'getUserPages: expected an address space');
  if (typeof options !== 'object' || options === null)
    throw new Errno('EINVAL', 'getUserPages: options must be an object');
  const write = flag(options, 'write');
  const longterm = flag(options, 'longterm');
  const pin = flag(options, 'pin') || longterm;
  if (!Number.isSafeInteger(start) || start < 0 || !pageAligned(start))
    throw new Errno('EINVAL', `getUserPages: start ${String(start)} is not a page-aligned address`);
  if (!Number.isSafeInteger(npages) || npages <= 0)
    throw new Errno('EINVAL', `getUserPages: page count ${String(npages)} must be positive`);
  const end = start + npages * PAGE_SIZE;
  if (!Number.isSafeInteger(end))
    throw new Errno('EINVAL', `getUserPages: ${npages} pages from ${hex(start)} overflow`);
  if (!mm.mmapLock.isLockedByCurrent())
    bug('warn', `getUserPages on mm${mm.id} without mmap_lock held (mmap_assert_locked)`);
  if (end > TASK_SIZE)
    throw new Errno('EFAULT', `getUserPages: [${hex(start)}, ${hex(end)}) goes past TASK_SIZE`);
  if (mm.exited) throw new Errno('EFAULT', `getUserPages: mm${mm.id} has exited`);
  const fn = pin ? 'pin_user_pages' : 'get_user_pages';
  return yield* mmPath(fn, mm, gupRange(mm, start, end, write, longterm, pin));
}

/** __get_user_pages() over [start, end) once the arguments are checked; all or nothing. */
function* gupRange(
  mm: Mm,
  start: number,
  end: number,
  write: boolean,
  longterm: boolean,
  pin: boolean,
): Co<Page[]> {
  const machine = mm.machine;
  const pages: Page[] = [];
  try {
    for (let addr = start; addr < end; addr += PAGE_SIZE) {
      const vma = mm.findVma(addr);
      if (vma === undefined) throw segv(addr, 'getUserPages: no VMA maps this address');
      checkVmaFlags(vma, addr, write, longterm);
      pages.push(yield* followOrFault(mm, vma, addr, write, pin));
    }
  } catch (e) {
    unpinUserPages(machine, pages, { pin });
    throw e;
  }
  return pages;
}

/** check_vma_flags(). */
function checkVmaFlags(vma: Vma, addr: number, write: boolean, longterm: boolean): void {
  if (vma.isIoOrPfnmap) throw segv(addr, `getUserPages: ${vma} is VM_IO/VM_PFNMAP`);
  if (write && !vma.writable) throw segv(addr, `getUserPages: write to ${vma} without VM_WRITE`);
  if (!write && !vma.readable) throw segv(addr, `getUserPages: read of ${vma} without VM_READ`);
  if (longterm && write && vma.isShared && vma.file !== null && !vma.file.shmem)
    throw segv(addr, `getUserPages: FOLL_LONGTERM write pin of a file-backed shared mapping`);
}

/**
 * follow_page_mask() then faultin_page() until the entry is usable; takes the reference (and
 * pin) in the same step as the check. A FOLL_PIN of an anonymous page shared with another
 * process (after fork) unshares it first, so the pin and the process see the same page.
 */
function* followOrFault(mm: Mm, vma: Vma, addr: number, write: boolean, pin: boolean): Co<Page> {
  const machine = mm.machine;
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const pte = mm.pte(addr);
    if (pte !== undefined && pte.kind === 'pfn')
      throw segv(addr, 'getUserPages: device pfn without a struct page');
    if (pte !== undefined && pte.kind === 'page' && pte.page !== null && pte.readable) {
      const page = pte.page;
      const mustUnshare = pin && page.isAnon && page.mapcount > 1 && !pte.writable && vma.writable;
      if ((!write || pte.writable) && !mustUnshare) {
        if (page.kind !== 'zero') {
          machine.phys.get(page);
          if (pin) page.pins++;
        }
        return page;
      }
      yield* handleMmFault(mm, addr, true);
      continue;
    }
    yield* handleMmFault(mm, addr, write);
  }
  throw new Errno('EAGAIN', `getUserPages: the entry at ${hex(addr)} kept changing`);
}

/**
 * unpin_user_pages() (with `pin` or `longterm`) or put_page() on each page from
 * {@link getUserPages}; `dirty` marks them dirty first (unpin_user_pages_dirty_lock()).
 * Unpinning a page that holds no pin is a kernel bug.
 */
export function unpinUserPages(
  machine: Machine,
  pages: readonly Page[],
  options: { pin?: boolean; longterm?: boolean; dirty?: boolean } = {},
): void {
  if (!Array.isArray(pages)) throw new Errno('EINVAL', 'unpinUserPages: pages must be an array');
  const pin = options.pin === true || options.longterm === true;
  for (const page of pages) {
    if (!(page instanceof Page))
      throw new Errno('EINVAL', 'unpinUserPages: every element must be a Page');
  }
  for (const page of pages) {
    if (page.kind === 'zero') continue;
    if (pin) {
      if (page.pins <= 0) bug('warn', `unpin_user_page of pfn ${page.pfn} which holds no pin`);
      page.pins--;
    }
    if (options.dirty === true) page.dirty = true;
    machine.phys.put(page);
  }
}
