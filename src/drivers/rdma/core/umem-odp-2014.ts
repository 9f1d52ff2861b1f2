/**
 * On-demand paging umems in their 2014 design (drivers/infiniband/core/umem_odp.c of
 * 882214e2b128, kernels 3.19–4.19), and in the interim design of 4.20–5.4 that dropped its
 * notifier count (`interim`): ib_umem_odp_get, ib_umem_odp_release,
 * ib_umem_odp_map_dma_pages (with ib_umem_odp_map_dma_single_page) and
 * ib_umem_odp_unmap_dma_pages, over the per-ucontext interval tree of umems, the notifier count
 * and the deferred activation of umems registered while a notifier runs. The notifier
 * callbacks are in umem-odp-2014-notifier.ts.
 */
import { lockdepOff, lockdepOn, preempt } from '../../../kernel/context.ts';
import { bug, kernel } from '../../../kernel/kernel.ts';
import { Atomic } from '../../../kernel/sync/atomic.ts';
import { Completion } from '../../../kernel/sync/completion.ts';
import { Mutex } from '../../../kernel/sync/mutex.ts';
import { RwSemaphore } from '../../../kernel/sync/rwsem.ts';
import type { Co } from '../../../kernel/task.ts';
import { BlockMap } from '../../../lib/block-map.ts';
import { Errno, isErrno } from '../../../lib/errors.ts';
import { IntervalTree, IntervalTreeNode } from '../../../lib/interval-tree.ts';
import { hex, PAGE_SIZE } from '../../../mm/constants.ts';
import { mmput } from '../../../mm/exit.ts';
import { getUserPages } from '../../../mm/gup.ts';
import type { Mm } from '../../../mm/mm.ts';
import {
  mmuNotifierRegister,
  mmuNotifierUnregister,
  mmuNotifierUnregisterNoRelease,
} from '../../../mm/mmu-notifier-register.ts';
import type { MmuNotifier } from '../../../mm/mmu-notifier-types.ts';
import type { Page } from '../../../mm/page.ts';
import { getTaskMm, type Process } from '../../../mm/process.ts';
import '../events.ts';
import type { IbUcontext } from './objects.ts';
import { odpNotifier2014, umemInvalidatePage } from './umem-odp-2014-notifier.ts';

/** Pages per get_user_pages() call: one page of page pointers (PAGE_SIZE / 8). */
export const GUP_CHUNK_PAGES = PAGE_SIZE / 8;

/** One page of a umem as the device driver maps it (page_list[i] with dma_list[i]'s bits). */
export interface OdpSlot {
  readonly page: Page;
  /** The frame's allocation generation when it was mapped (the model's DMA address). */
  readonly gen: number;
  /** ODP_READ_ALLOWED_BIT / ODP_WRITE_ALLOWED_BIT. */
  read: boolean;
  write: boolean;
}

/** The access a fault asks for (the ODP_*_ALLOWED_BIT mask). */
export interface OdpAccess {
  readonly read: boolean;
  readonly write: boolean;
}

/** The per-ucontext ODP state of the 2014 design (fields of struct ib_ucontext). */
export class UcontextOdp2014 {
  /** The context's name in reports (its file's). */
  readonly name: string;
  /** umem_tree: every ODP umem of the context, by [start, end - 1]. */
  readonly tree = new IntervalTree<UmemOdp2014>();
  /** umem_rwsem: protects the tree, odp_mrs_count and notifier (un)registration. */
  readonly umemRwsem: RwSemaphore;
  /** notifier_count: notifier invocations between their start and their end. */
  readonly notifierCount: Atomic;
  /** no_private_counters: umems registered while a notifier ran, still inactive. */
  readonly noPrivateCounters: UmemOdp2014[] = [];
  odpMrsCount = 0;
  /**
   * mn: one classic notifier on the owner's mm while the context has ODP MRs. The interim
   * design allocates a fresh one (its per_mm) at each first registration: the previous one
   * may still be awaiting its SRCU-deferred free.
   */
  mn: MmuNotifier;
  /** per_mm->mm (interim): the mm the notifier was registered on, unregistered from at the end. */
  registeredMm: Mm | null = null;
  /** ->invalidate_range: the driver's hook; null for a device without ODP. */
  readonly invalidateRange: ((umem: UmemOdp2014, start: number, end: number) => Co) | null;
  /**
   * The interim design (ca748c39ea3f, 4.20 to 5.4): no notifier count and no deferred
   * activation; range_start holds umem_rwsem for read until range_end, so a registration
   * (which takes it for write) waits out every invalidation in flight.
   */
  readonly interim: boolean;
  /** per_mm->active (interim): cleared, under umem_rwsem for write, with the last ODP MR. */
  active = true;
  /**
   * A variant no kernel had, for `odpsim study designs`: invalidations find their umems by
   * examining every umem of the context (a linear list) instead of the interval tree.
   */
  linearDispatch = false;
  /** The fix of the exit leak is applied (IbDevice.fixOdp2014Exit). */
  fixExit = false;

  constructor(
    name: string,
    invalidateRange: ((umem: UmemOdp2014, start: number, end: number) => Co) | null,
    interim = false,
  ) {
    this.name = name;
    this.interim = interim;
    this.umemRwsem = new RwSemaphore(`${name}.umem_rwsem`, 'umem_rwsem');
    this.notifierCount = new Atomic(`${name}.notifier_count`);
    this.invalidateRange = invalidateRange;
    this.mn = odpNotifier2014(this);
    // With every task finished no invalidation runs: while the notifier is registered, a count
    // left raised is a start never ended (after the last MR an unregistration may strand one,
    // harmlessly: the next first registration sets it to 0).
    const k = kernel();
    k.onQuiescence(() => {
      const n = this.notifierCount.peek();
      if (n !== 0 && this.mn.hashed)
        k.bug(
          'notifier-pairing',
          `${name}: notifier_count is ${n} with every task finished: an invalidation start was never ended`,
        );
    });
  }
}

/** struct ib_umem with its ib_umem_odp (odp_data) of the 2014 design. */
export class UmemOdp2014 {
  readonly kind = 'odp-2014';
  readonly context: IbUcontext;
  /** umem->address and length as registered; start/end are page aligned. */
  readonly address: number;
  readonly length: number;
  readonly start: number;
  readonly end: number;
  /** umem->writable: ib_access_writable() of the registration. */
  readonly writable: boolean;
  /**
   * page_list and dma_list: the pages mapped for the device, with their access bits, by page
   * index (stored sparse: memory grows with the pages mapped, not with the span).
   */
  readonly slots = new BlockMap<OdpSlot>();
  /** umem_mutex: guards the slots and the counters below. */
  readonly umemMutex: Mutex;
  /** private: the driver's MR, set once the MR exists (invalidation skips the umem before). */
  privateMr: unknown = null;
  /** mn_counters_active: false while still on no_private_counters (faults must retry). */
  mnCountersActive = false;
  /** notifiers_seq: bumped at every invalidation end. */
  notifiersSeq = 0;
  /** notifiers_count: invalidations between their start and end covering this umem. */
  notifiersCount = 0;
  /** notifier_completion: completed when notifiers_count returns to 0. */
  readonly notifierCompletion: Completion;
  /** dying: the owner's mm is being released; faults fail for good. */
  dying = false;
  readonly node: IntervalTreeNode<UmemOdp2014>;
  readonly name: string;

  constructor(context: IbUcontext, address: number, length: number, writable: boolean, id: number) {
    this.context = context;
    this.address = address;
    this.length = length;
    this.start = address - (address % PAGE_SIZE);
    this.end = Math.ceil((address + length) / PAGE_SIZE) * PAGE_SIZE;
    this.writable = writable;
    this.name = `${context.device.name}/umem${id}`;
    this.umemMutex = new Mutex(`${this.name}.umem_mutex`, 'umem_mutex');
    this.notifierCompletion = new Completion(`${this.name}.notifier_completion`);
    this.node = new IntervalTreeNode(this.start, Math.max(this.start, this.end - 1), this);
  }

  /** ib_umem_num_pages(). */
  get npages(): number {
    return (this.end - this.start) / PAGE_SIZE;
  }
}

/**
 * ib_umem_mmu_notifier_retry(): a fault that sampled `seq` must not map: the umem is still
 * inactive, an invalidation is running, or one ended since. Called under umem_mutex.
 */
export function umemMmuNotifierRetry(umem: UmemOdp2014, seq: number): boolean {
  return !umem.mnCountersActive || umem.notifiersCount !== 0 || umem.notifiersSeq !== seq;
}

/**
 * ib_umem_odp_get(): an ODP umem over [addr, addr + length) of the caller's mm, in the
 * caller's context. EINVAL when the caller is not the context's creator (no ODP MR from a
 * forked child) or has no address space. The umem joins the tree under umem_rwsem and is
 * active at once unless a notifier is running (then it waits on no_private_counters); the
 * first ODP MR of the context registers the notifier.
 */
export function* ibUmemOdpGet2014(
  context: IbUcontext,
  caller: Process,
  addr: number,
  length: number,
  writable: boolean,
): Co<UmemOdp2014> {
  const mm = getTaskMm(caller);
  if (mm === null) throw new Errno('EINVAL', `ODP registration by ${caller}, which has no mm`);
  try {
    if (context.tgid !== caller)
      throw new Errno(
        'EINVAL',
        `ODP MRs may only be registered by the context's creator (${context.tgid}), not ${caller}`,
      );
    const odp = context.odp2014;
    const umem = new UmemOdp2014(context, addr, length, writable, context.device.objectId());
    yield* odp.umemRwsem.downWrite();
    odp.odpMrsCount++;
    if (umem.start !== umem.end) odp.tree.insertNode(umem.node);
    const first = odp.odpMrsCount === 1;
    const racy = kernel().mutant('odp2014.activation-race');
    if (odp.interim) {
      // No invalidation is in flight: each holds umem_rwsem for read until its end.
      odp.active = true;
      umem.mnCountersActive = true;
    } else if ((yield* odp.notifierCount.read()) === 0 || first) umem.mnCountersActive = true;
    else {
      // The count was read without anything holding it: another CPU may end its notifier here.
      yield* preempt();
      odp.noPrivateCounters.push(umem);
      // Mutant O1: the notifier that was running may have ended between the read above and
      // the list insertion, seen an empty list, and skipped the activation (as shipped).
      if (!racy) yield* recheckActivation(umem);
    }
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('odp-umem', {
        umem: umem.name,
        state: umem.mnCountersActive ? 'active' : 'deferred',
      });
    odp.umemRwsem.downgradeWrite();
    try {
      if (first) yield* registerNotifier(odp, mm);
    } catch (e) {
      odp.umemRwsem.upRead();
      yield* releaseFromTree(umem);
      throw e;
    }
    odp.umemRwsem.upRead();
    return umem;
  } finally {
    // mmput() only once umem_rwsem is released: it may run the exit notifiers, which take it.
    yield* mmput(mm);
  }
}

/**
 * With umem_rwsem held for write, after the umem joined no_private_counters: if the count is
 * already back to zero, the notifier that raised it has ended and may have found the list
 * empty; activate the umem here. (The shipped code had no such check: regression case O1.)
 */
function* recheckActivation(umem: UmemOdp2014): Co {
  const odp = umem.context.odp2014;
  if ((yield* odp.notifierCount.read()) !== 0) return;
  yield* activate(umem);
}

/** Activates a deferred umem: counters on, off the list, waiters released (umem_mutex held inside). */
export function* activate(umem: UmemOdp2014): Co {
  const list = umem.context.odp2014.noPrivateCounters;
  yield* umem.umemMutex.lock();
  umem.mnCountersActive = true;
  list.splice(list.indexOf(umem), 1);
  umem.notifierCompletion.completeAll();
  umem.umemMutex.unlock();
  const k = kernel();
  if (k.trace.on) k.trace.emit('odp-umem', { umem: umem.name, state: 'activated' });
}

/**
 * The first ODP MR registers the context's notifier. notifier_count is reset first (no
 * notifier of this context can be running). Lockdep is off around it, as in the kernel: it
 * sees umem_rwsem → mmap_lock here and mmap_lock → umem_rwsem in the callbacks, a false
 * positive since the callbacks cannot run before the registration completes.
 */
function* registerNotifier(odp: UcontextOdp2014, mm: Mm): Co {
  yield* odp.notifierCount.set(0);
  if (odp.interim) {
    odp.mn = odpNotifier2014(odp);
    odp.registeredMm = mm;
  }
  lockdepOff();
  try {
    yield* mmuNotifierRegister(odp.mn, mm);
  } catch (e) {
    throw isErrno(e) ? new Errno('EBUSY', `mmu_notifier_register failed: ${e.message}`) : e;
  } finally {
    lockdepOn();
  }
}

/** The tree and counter half of the release (umem_rwsem taken for write inside). */
function* releaseFromTree(umem: UmemOdp2014): Co<boolean> {
  const odp = umem.context.odp2014;
  yield* odp.umemRwsem.downWrite();
  if (umem.node.inTree) odp.tree.remove(umem.node);
  odp.odpMrsCount--;
  if (odp.interim && odp.odpMrsCount === 0) odp.active = false;
  if (!umem.mnCountersActive) {
    const i = odp.noPrivateCounters.indexOf(umem);
    if (i >= 0) odp.noPrivateCounters.splice(i, 1);
    umem.notifierCompletion.completeAll();
  }
  odp.umemRwsem.downgradeWrite();
  return odp.odpMrsCount === 0;
}

/**
 * ib_umem_odp_release(): the driver guarantees the device no longer uses the umem. Unmaps every
 * page, leaves the tree, and — for the context's last ODP MR, if the owning process and its mm
 * still exist — unregisters the notifier. Then frees the umem's state.
 */
export function* ibUmemOdpRelease2014(umem: UmemOdp2014): Co {
  yield* ibUmemOdpUnmapDmaPages2014(umem, umem.start, umem.end);
  const odp = umem.context.odp2014;
  const last = yield* releaseFromTree(umem);
  if (last && odp.interim) {
    // put_per_mm() (4.20-5.4): unregisters from per_mm->mm whether or not its owner lives.
    const mm = odp.registeredMm!;
    odp.registeredMm = null;
    yield* mmuNotifierUnregisterNoRelease(odp.mn, mm);
  } else if (last && odp.fixExit) {
    // The proposed fix: unregister from the mm registered on (the registration's mm_count
    // keeps it), so no owner lookup and no mmput() under umem_rwsem.
    yield* mmuNotifierUnregister(odp.mn, odp.mn.mm!);
  } else if (last) {
    // get_pid_task(context->tgid) and get_task_mm(): an exited owner has no mm to unregister
    // from (its notifiers were unlinked when the mm was released). Its mm_count, taken by
    // mmu_notifier_register(), is then never dropped: the mm_struct leaks (3.19-4.19).
    const mm = getTaskMm(umem.context.tgid);
    if (mm !== null) {
      yield* mmuNotifierUnregister(odp.mn, mm);
      yield* mmput(mm);
    }
  }
  odp.umemRwsem.upRead();
  umem.notifierCompletion.free();
}

/**
 * ib_umem_odp_map_dma_pages(): faults [userVirt, userVirt + bcnt) in with get_user_pages (write
 * when `access.write`), in chunks of {@link GUP_CHUNK_PAGES}, and maps each page under
 * umem_mutex unless an invalidation raced (`currentSeq` was sampled by the caller before).
 * Returns the number of pages mapped from the first; EFAULT outside the umem, EAGAIN on a race,
 * GUP's error when not even the first page could be had. No page reference is kept: the
 * notifier, not a pin, keeps the device coherent.
 */
export function* ibUmemOdpMapDmaPages2014(
  umem: UmemOdp2014,
  userVirt: number,
  bcnt: number,
  access: OdpAccess,
  currentSeq: number,
): Co<number> {
  if (!access.read && !access.write) throw new Errno('EINVAL', 'empty ODP access mask');
  if (userVirt < umem.start || userVirt + bcnt > umem.end)
    throw new Errno(
      'EFAULT',
      `[${hex(userVirt)}, +${bcnt}) is outside ${umem.name} [${hex(umem.start)}, ${hex(umem.end)})`,
    );
  const owner = umem.context.tgid;
  const mm = getTaskMm(owner);
  if (mm === null) throw new Errno('EINVAL', `${umem.name}: the owning process has no mm`);
  const first = userVirt - (userVirt % PAGE_SIZE);
  let remaining = bcnt + (userVirt - first);
  let addr = first;
  let k = (first - umem.start) / PAGE_SIZE;
  const startIdx = k;
  let gupError: unknown = null;
  try {
    while (remaining > 0) {
      const want = Math.min(Math.ceil(remaining / PAGE_SIZE), GUP_CHUNK_PAGES);
      const pages = yield* gupChunk(mm, addr, want, access.write);
      if (pages instanceof Errno) {
        gupError = pages;
        break;
      }
      remaining -= Math.min(pages.length * PAGE_SIZE, remaining);
      addr += pages.length * PAGE_SIZE;
      yield* umem.umemMutex.lock();
      let j = 0;
      try {
        for (; j < pages.length; j++) {
          yield* mapDmaSinglePage(umem, k, pages[j]!, access, currentSeq);
          k++;
        }
      } finally {
        umem.umemMutex.unlock();
        // Release left-over pages when handling errors.
        for (j++; j < pages.length; j++) mm.machine.phys.put(pages[j]!);
      }
    }
  } finally {
    yield* mmput(mm);
  }
  if (gupError !== null && k === startIdx) throw gupError;
  return k - startIdx;
}

/**
 * get_user_pages() for up to `n` pages (mmap_lock held for read): the pages it could get, or
 * the error of the first page. Each page carries a reference the caller drops.
 */
function* gupChunk(mm: Mm, addr: number, n: number, write: boolean): Co<Page[] | Errno> {
  const pages: Page[] = [];
  yield* mm.mmapLock.downRead();
  try {
    for (let i = 0; i < n; i++) {
      try {
        pages.push(...(yield* getUserPages(mm, addr + i * PAGE_SIZE, 1, { write })));
      } catch (e) {
        if (!isErrno(e)) throw e;
        if (pages.length === 0) return e;
        break;
      }
    }
  } finally {
    mm.mmapLock.upRead();
  }
  return pages;
}

/**
 * ib_umem_odp_map_dma_single_page() (umem_mutex held): EAGAIN when an invalidation raced;
 * otherwise stores the page (or adds the access bits to the same page). A different page in
 * the slot "should not happen": the slot is invalidated and the fault retries. The GUP
 * reference is dropped in every case.
 */
function* mapDmaSinglePage(
  umem: UmemOdp2014,
  index: number,
  page: Page,
  access: OdpAccess,
  currentSeq: number,
): Co {
  const phys = umem.context.device.machine.phys;
  let removeExisting = false;
  try {
    if (umemMmuNotifierRetry(umem, currentSeq))
      throw new Errno('EAGAIN', `${umem.name}: an invalidation raced the fault`);
    const slot = umem.slots.get(index);
    if (slot === undefined) {
      umem.slots.set(index, { page, gen: page.gen, read: access.read, write: access.write });
    } else if (slot.page === page && slot.gen === page.gen) {
      slot.read ||= access.read;
      slot.write ||= access.write;
    } else {
      removeExisting = true;
    }
  } finally {
    phys.put(page);
  }
  if (removeExisting) {
    umem.umemMutex.unlock();
    try {
      yield* umemInvalidatePage(umem, umem.start + index * PAGE_SIZE);
    } finally {
      yield* umem.umemMutex.lock();
    }
    throw new Errno('EAGAIN', `${umem.name}: the device slot held another page`);
  }
}

/**
 * ib_umem_odp_unmap_dma_pages(): clears the slots of [virt, bound) under umem_mutex, marking
 * pages the device could write dirty. Callers run with the umem's count raised (no fault can
 * complete); racing invalidations are fine, each slot is cleared once.
 */
export function* ibUmemOdpUnmapDmaPages2014(umem: UmemOdp2014, virt: number, bound: number): Co {
  const lo = Math.max(virt, umem.start);
  const hi = Math.min(bound, umem.end);
  yield* umem.umemMutex.lock();
  for (let addr = lo - (lo % PAGE_SIZE); addr < hi && umem.slots.size > 0; addr += PAGE_SIZE) {
    const i = (addr - umem.start) / PAGE_SIZE;
    const slot = umem.slots.get(i);
    if (slot === undefined) continue;
    if (slot.write) setPageDirty(umem, slot);
    umem.slots.delete(i);
  }
  umem.umemMutex.unlock();
}

/** set_page_dirty() of a mapped slot's page, which must still be the frame that was mapped. */
function setPageDirty(umem: UmemOdp2014, slot: OdpSlot): void {
  if (slot.page.kind === 'free' || slot.page.gen !== slot.gen)
    bug(
      'use-after-free',
      `${umem.name}: set_page_dirty on pfn ${slot.page.pfn}, freed before the device mapping was removed`,
    );
  slot.page.dirty = true;
}
