/**
 * hmm_range_fault() (mm/hmm.c): snapshots the CPU page table over a range into device pfns,
 * faulting pages in where the request asks, for a driver using an interval notifier.
 */

import { bug } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { hex, PAGE_SIZE, PMD_SIZE, pageAligned } from './constants.ts';
import { handleMmFault } from './fault.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { mmuIntervalCheckRetry } from './mmu-interval-notifier.ts';
import type { MmuIntervalNotifier } from './mmu-interval-notifier-types.ts';
import { type Pte, ptePresent } from './pte.ts';

/** HMM_RANGE_DEFAULT_TIMEOUT: how long a driver retries hmm_range_fault() on EBUSY, 1000 ms. */
export const HMM_RANGE_DEFAULT_TIMEOUT_NS = 1_000_000_000;
/** HMM_PFN_VALID: the entry maps a page the device may read. */
export const HMM_PFN_VALID = 1;
/** HMM_PFN_WRITE: the device may also write it. */
export const HMM_PFN_WRITE = 2;
/** HMM_PFN_ERROR: no usable mapping (no VMA, PROT_NONE, special mapping). */
export const HMM_PFN_ERROR = 4;
/** HMM_PFN_REQ_FAULT: an input flag asking for the page to be faulted in (HMM_PFN_VALID's bit). */
export const HMM_PFN_REQ_FAULT = HMM_PFN_VALID;
/** HMM_PFN_REQ_WRITE: an input flag asking for it writable too (HMM_PFN_WRITE's bit). */
export const HMM_PFN_REQ_WRITE = HMM_PFN_WRITE;
const REQ_BITS = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE;
const ORDER_SHIFT = 3;
/** The map order of a PMD mapping (2 MiB = 2^9 pages). */
const PMD_ORDER = 9;
const FLAG_SPAN = 256;

/** The pfn an output entry names. */
export function hmmPfnToPfn(entry: number): number {
  return Math.floor(entry / FLAG_SPAN);
}

/** The flag bits of an output entry. */
export function hmmPfnFlags(entry: number): number {
  return entry % 8;
}

/** hmm_pfn_to_map_order(): 0 for a PTE, 9 for a PMD mapping. */
export function hmmPfnMapOrder(entry: number): number {
  return Math.floor((entry % FLAG_SPAN) / 8);
}

/** What the driver asks for each page (HMM_PFN_REQ_FAULT / HMM_PFN_REQ_WRITE). */
export interface HmmRequest {
  readonly fault: boolean;
  readonly write: boolean;
}

/** struct hmm_range. */
export interface HmmRange {
  readonly notifier: MmuIntervalNotifier;
  /** The sequence from mmu_interval_read_begin(). */
  readonly notifierSeq: number;
  readonly start: number;
  readonly end: number;
  /** default_flags: what every page is asked for. */
  readonly defaultFlags: HmmRequest;
  /**
   * pfn_flags_mask: the per-page input flags of `pfns` that count (HMM_PFN_REQ_FAULT and
   * HMM_PFN_REQ_WRITE bits); 0, the usual, ignores whatever `pfns` holds.
   */
  readonly pfnFlagsMask: number;
  /**
   * hmm_pfns. Input: each page's request flags, under pfnFlagsMask. Output: one entry per
   * page (pfn·256 + map order·8 + flags), overwriting the input.
   */
  pfns: number[];
  /** Output: the allocation generation of each page's frame (for the device's records). */
  gens: number[];
  /**
   * dev_private_owner: device-private pages of this owner are reported as they are (never
   * faulted); another owner's are faulted back to system memory when a fault is requested.
   */
  readonly devPrivateOwner: unknown;
}

/** The most pages one range spans: its pfns array must be allocatable (64 GiB of addresses). */
export const HMM_RANGE_MAX_PAGES = 2 ** 24;

/** Per-page requests for {@link hmmRange}: pfn_flags_mask and the input flags of each page. */
export interface HmmPageRequests {
  readonly pfnFlagsMask: number;
  /** One entry per page of the range (only its HMM_PFN_REQ_* bits are read). */
  readonly pfns: readonly number[];
}

/**
 * A fresh range with zeroed outputs (drivers must use fresh inputs on every retry), or with
 * `perPage` inputs, and `devPrivateOwner`. EINVAL unless `start` and `end` are non-negative safe integers a whole
 * number of pages apart (an `end` below `start` is left to hmmRangeFault()), or for a mask or
 * input array that does not fit; ENOMEM above {@link HMM_RANGE_MAX_PAGES}.
 */
export function hmmRange(
  notifier: MmuIntervalNotifier,
  notifierSeq: number,
  start: number,
  end: number,
  defaultFlags: HmmRequest,
  perPage?: HmmPageRequests,
  devPrivateOwner: unknown = null,
): HmmRange {
  const index = (v: number) => Number.isSafeInteger(v) && v >= 0;
  if (!index(start) || !index(end) || (end > start && (end - start) % PAGE_SIZE !== 0))
    throw new Errno(
      'EINVAL',
      `hmm_range: [${String(start)}, ${String(end)}) is not a whole number of pages of user addresses`,
    );
  const n = Math.max(0, (end - start) / PAGE_SIZE);
  if (n > HMM_RANGE_MAX_PAGES)
    throw new Errno(
      'ENOMEM',
      `hmm_range: ${n} pages, more than a pfns array holds (${HMM_RANGE_MAX_PAGES})`,
    );
  const mask = perPage?.pfnFlagsMask ?? 0;
  if (!Number.isSafeInteger(mask) || mask < 0 || (mask & ~REQ_BITS) !== 0)
    throw new Errno(
      'EINVAL',
      `hmm_range: pfn_flags_mask ${String(mask)} has bits other than HMM_PFN_REQ_FAULT and HMM_PFN_REQ_WRITE`,
    );
  if (perPage !== undefined && perPage.pfns.length !== n)
    throw new Errno(
      'EINVAL',
      `hmm_range: ${perPage.pfns.length} input pfns for a range of ${n} pages`,
    );
  return {
    notifier,
    notifierSeq,
    start,
    end,
    defaultFlags,
    pfnFlagsMask: mask,
    pfns: perPage === undefined ? new Array<number>(n).fill(0) : [...perPage.pfns],
    gens: new Array<number>(n).fill(0),
    devPrivateOwner,
  };
}

/**
 * hmm_pte_need_fault()'s request for page `i`: its input flags under pfn_flags_mask, or'ed
 * with default_flags. A write request counts only with a fault request.
 */
function pageRequest(range: HmmRange, i: number): HmmRequest {
  const input = range.pfnFlagsMask === 0 ? 0 : (range.pfns[i] ?? 0) & range.pfnFlagsMask;
  const fault = range.defaultFlags.fault || (input & HMM_PFN_REQ_FAULT) !== 0;
  const write = range.defaultFlags.write || (input & HMM_PFN_REQ_WRITE) !== 0;
  return { fault, write: fault && write };
}

/** Whether a device-private entry's page belongs to the range's dev_private_owner. */
function ownDevicePage(range: HmmRange, pte: Pte): boolean {
  return range.devPrivateOwner !== null && pte.page?.pgmap?.owner === range.devPrivateOwner;
}

/** hmm_vma_handle_pmd()'s map order in an output entry: 9 under a huge PMD, else 0. */
function mapOrder(mm: Mm, addr: number): number {
  return mm.pmdHuge(addr) ? PMD_ORDER << ORDER_SHIFT : 0;
}

/** The end of the PMD that holds `addr`: where one step of the page walk stops. */
function pmdEnd(addr: number): number {
  return addr - (addr % PMD_SIZE) + PMD_SIZE;
}

/**
 * hmm_vma_fault(): faults in every page from `addr` to the end of the PMD walk step (not just
 * the one that needed it), then the walk starts again from `addr` (-EBUSY inside
 * hmm_range_fault). So a range whose faults invalidate it (a zero page replaced on write)
 * costs a pass per PMD, not per page.
 */
function* hmmVmaFault(mm: Mm, addr: number, end: number, write: boolean): Co {
  for (; addr < end; addr += PAGE_SIZE) yield* handleMmFault(mm, addr, write);
}

/**
 * hmm_range_fault(): fills range.pfns (the caller holds mmap_lock for read). EFAULT without
 * a VMA, without read permission or on VM_IO/VM_PFNMAP when a fault is requested (else the
 * entry is ERROR); EPERM for a write request on a VMA without write permission; EBUSY as soon
 * as mmu_interval_check_retry() says the sequence moved (checked before each page, and after a
 * fault, which covers the rest of the PMD step). The zero page is reported read-only; a page
 * under a huge PMD has map order 9 (hmm_vma_handle_pmd()). A
 * device-private page of the range's owner is reported as it is; another owner's is faulted
 * back (its driver's migrate_to_ram()) when a fault is requested, else reported as 0.
 */
export function* hmmRangeFault(mm: Mm, range: HmmRange): Co {
  return yield* mmPath('hmm_range_fault', mm, hmmRangeFaultBody(mm, range));
}

function* hmmRangeFaultBody(mm: Mm, range: HmmRange): Co {
  if (!pageAligned(range.start) || !pageAligned(range.end) || range.end < range.start) {
    throw new Errno(
      'EINVAL',
      `hmm_range_fault: range [${hex(range.start)}, ${hex(range.end)}) is not page aligned`,
    );
  }
  if (!mm.mmapLock.isLockedByCurrent()) bug('warn', 'hmm_range_fault without mmap_lock held');
  for (let i = 0, addr = range.start; addr < range.end; ) {
    if (mmuIntervalCheckRetry(range.notifier, range.notifierSeq))
      throw new Errno('EBUSY', 'hmm_range_fault: the range was invalidated');
    const { fault, write } = pageRequest(range, i);
    const vma = mm.findVma(addr);
    if (vma === undefined || !vma.readable || vma.isIoOrPfnmap) {
      if (fault)
        throw new Errno(
          'EFAULT',
          `hmm_range_fault: ${hex(addr)} has ${vma === undefined ? 'no VMA' : 'no readable page behind it'}`,
        );
      range.pfns[i] = HMM_PFN_ERROR;
      i++;
      addr += PAGE_SIZE;
      continue;
    }
    if (fault && write && !vma.writable)
      throw new Errno('EPERM', `hmm_range_fault: write requested on read-only ${vma}`);
    const pte = mm.pte(addr);
    if (pte?.kind === 'device' && ownDevicePage(range, pte)) {
      // hmm_is_device_private_entry(): reported in place, even for a write request.
      range.pfns[i] =
        pte.page!.pfn * FLAG_SPAN +
        mapOrder(mm, addr) +
        HMM_PFN_VALID +
        (pte.writable ? HMM_PFN_WRITE : 0);
      range.gens[i] = pte.page!.gen;
      i++;
      addr += PAGE_SIZE;
      continue;
    }
    const usable = ptePresent(pte) && pte.readable && (!write || pte.writable);
    if (!usable) {
      if (fault) {
        yield* hmmVmaFault(mm, addr, Math.min(pmdEnd(addr), range.end, vma.end), write);
        continue;
      }
      range.pfns[i] = 0;
      range.gens[i] = 0;
    } else {
      const pfn = pte.kind === 'pfn' ? pte.pfn : pte.page!.pfn;
      range.pfns[i] =
        pfn * FLAG_SPAN + mapOrder(mm, addr) + HMM_PFN_VALID + (pte.writable ? HMM_PFN_WRITE : 0);
      range.gens[i] = pte.kind === 'pfn' ? 0 : pte.page!.gen;
    }
    i++;
    addr += PAGE_SIZE;
    yield;
  }
}
