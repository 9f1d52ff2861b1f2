/**
 * Mapping driver IO memory to user space (drivers/infiniband/core/ib_core_uverbs.c):
 * rdma_user_mmap_io with rdma_umap_priv_init, which track every VMA that maps a device frame,
 * and the refcounted mmap-entry database (≥ 5.5): rdma_user_mmap_entry_insert_range / insert /
 * insert_exact, get_pgoff, get, put and remove.
 */
import { preempt } from '../../../kernel/context.ts';
import { bug, kernel } from '../../../kernel/kernel.ts';
import { Tracked } from '../../../kernel/lifetime.ts';
import type { Co } from '../../../kernel/task.ts';
import { Errno } from '../../../lib/errors.ts';
import { hex, PAGE_SIZE, VM_SHARED } from '../../../mm/constants.ts';
import { remapPfnRange } from '../../../mm/pfn-map.ts';
import type { Vma } from '../../../mm/vma.ts';
import type { IbUcontext } from './objects.ts';
import type { UverbsFile } from './uverbs.ts';
import { rdmaUmapOps } from './uverbs-mmap.ts';

/** U32_MAX: the largest page offset an entry may have. */
const U32_MAX = 0xffff_ffff;

/** struct rdma_user_mmap_entry, with the driver's frames it stands for. */
export class RdmaUserMmapEntry {
  readonly ucontext: IbUcontext;
  /** The kref, as the lifetime oracle sees it; `refs` counts the references. */
  readonly tracked: Tracked;
  /** kref: 1 (the driver's) from insertion on. */
  refs = 0;
  startPgoff = 0;
  readonly npages: number;
  /** driver_removed: set by remove(); no new mapping may be made of it. */
  driverRemoved = false;
  /** The first device frame and how the driver maps it (its own data). */
  readonly pfn: number;
  freed = false;

  constructor(ucontext: IbUcontext, pfn: number, length: number, name: string) {
    this.ucontext = ucontext;
    this.pfn = pfn;
    this.npages = Math.ceil(length / PAGE_SIZE);
    this.tracked = new Tracked(name);
  }
}

/** struct rdma_umap_priv: the tracking of one VMA. */
export interface RdmaUmapPriv {
  vma: Vma;
  /** The entry the VMA maps (≥ 5.5), holding a reference; null once put. */
  entry: RdmaUserMmapEntry | null;
}

/** The uverbs file behind a VMA of the device (vma->vm_file->private_data). */
export function ufileOf(vma: Vma): UverbsFile {
  const ufile = vma.file?.privateData as UverbsFile | null | undefined;
  if (ufile === null || ufile === undefined)
    bug('warn', `${vma} is not a mapping of a uverbs file`);
  return ufile;
}

/**
 * rdma_umap_priv_init(): links `priv` to the VMA and to the file's umaps list (under
 * umap_lock), taking a reference on `entry` for it.
 */
export function* rdmaUmapPrivInit(
  priv: RdmaUmapPriv,
  vma: Vma,
  entry: RdmaUserMmapEntry | null,
): Co {
  const ufile = ufileOf(vma);
  priv.vma = vma;
  if (entry !== null) {
    entry.refs++;
    entry.tracked.get();
    priv.entry = entry;
  }
  vma.privateData = priv;
  if (ufile.device.era < 505) vma.ops = rdmaUmapOps;
  yield* ufile.umapLock.lock();
  ufile.umaps.push(priv);
  ufile.umapLock.unlock();
  trackEvent(ufile, vma, 'link');
}

/** The vma-track event the oracles follow. */
export function trackEvent(ufile: UverbsFile, vma: Vma, op: 'link' | 'unlink'): void {
  const k = kernel();
  if (k.trace.on)
    k.trace.emit('vma-track', { tracker: `${ufile}`, mm: vma.mm.id, vma: vma.id, op });
}

/**
 * rdma_user_mmap_io(): maps `size` bytes of device frames from `pfn` into the whole VMA at
 * once, and tracks the VMA. EINVAL unless the VMA is VM_SHARED (since 67f269b37f9b, v5.1), its
 * length is `size` and its file is this context's; EAGAIN when the frames cannot be mapped.
 * Called from the driver's ->mmap, under mmap_lock (write) and disassociate_srcu.
 */
export function* rdmaUserMmapIo(
  ucontext: IbUcontext,
  vma: Vma,
  pfn: number,
  size: number,
  entry: RdmaUserMmapEntry | null,
): Co {
  const ufile = ucontext.ufile;
  if (ufile.device.era >= 501 && !(vma.flags & VM_SHARED))
    throw new Errno('EINVAL', `rdma_user_mmap_io: ${vma} is not a shared mapping`);
  if (vma.end - vma.start !== size)
    throw new Errno('EINVAL', `rdma_user_mmap_io: ${vma} is not ${size} bytes long`);
  if (vma.file !== ufile.filp)
    bug('warn', `rdma_user_mmap_io: ${vma} is not a mapping of ${ufile}`);
  const priv: RdmaUmapPriv = { vma, entry: null };
  try {
    yield* remapPfnRange(vma, vma.start, pfn, size);
  } catch (e) {
    throw new Errno('EAGAIN', `rdma_user_mmap_io: ${e instanceof Error ? e.message : String(e)}`);
  }
  const pages = size / PAGE_SIZE;
  if (!ufile.mappedPfns.some(([f, n]) => f === pfn && n === pages))
    ufile.mappedPfns.push([pfn, pages]);
  yield* rdmaUmapPrivInit(priv, vma, entry);
}

/**
 * rdma_user_mmap_entry_insert_range(): gives `entry` (with its driver reference) the lowest
 * free run of page offsets starting in [min, max] (and ending below U32_MAX), under umap_lock
 * and the xarray's lock. Returns the mmap offset (start_pgoff in bytes); ENOMEM when none is
 * free, the entry then being dead (the driver frees it).
 */
export function* rdmaUserMmapEntryInsertRange(
  ucontext: IbUcontext,
  entry: RdmaUserMmapEntry,
  min: number,
  max: number,
): Co<number> {
  const ufile = ucontext.ufile;
  entry.refs = 1;
  entry.tracked.get();
  yield* ufile.umapLock.lock();
  yield* ucontext.mmapXaLock.lock();
  try {
    // The run starts at or below max and ends without overflowing a u32 (as xas_find_marked
    // and check_add_overflow decide it).
    for (let first = min; first <= max && first + entry.npages <= U32_MAX; ) {
      let clash = -1;
      for (let i = first; i < first + entry.npages; i++) if (ucontext.mmapXa.has(i)) clash = i;
      if (clash < 0) {
        for (let i = first; i < first + entry.npages; i++) ucontext.mmapXa.set(i, entry);
        entry.startPgoff = first;
        return first * PAGE_SIZE;
      }
      first = clash + 1;
    }
    // The caller frees the entry (kfree after kref_init): its reference goes with it.
    entry.refs = 0;
    entry.tracked.put();
    entry.freed = true;
    entry.tracked.free();
    throw new Errno(
      'ENOMEM',
      `no free mmap offset range of ${entry.npages} pages starting in [${min}, ${max}]`,
    );
  } finally {
    ucontext.mmapXaLock.unlock();
    ufile.umapLock.unlock();
  }
}

/** rdma_user_mmap_entry_insert(): anywhere in [0, U32_MAX]. */
export function rdmaUserMmapEntryInsert(
  ucontext: IbUcontext,
  entry: RdmaUserMmapEntry,
): Co<number> {
  return rdmaUserMmapEntryInsertRange(ucontext, entry, 0, U32_MAX);
}

/** rdma_user_mmap_entry_insert_exact(): at page offset `pgoff` only. */
export function rdmaUserMmapEntryInsertExact(
  ucontext: IbUcontext,
  entry: RdmaUserMmapEntry,
  pgoff: number,
): Co<number> {
  return rdmaUserMmapEntryInsertRange(ucontext, entry, pgoff, pgoff);
}

/**
 * rdma_user_mmap_entry_get_pgoff(): under the xarray's lock, the entry starting at `pgoff`
 * with a new reference, unless it was removed or is being freed; null otherwise.
 */
export function* rdmaUserMmapEntryGetPgoff(
  ucontext: IbUcontext,
  pgoff: number,
): Co<RdmaUserMmapEntry | null> {
  if (!Number.isSafeInteger(pgoff) || pgoff < 0 || pgoff > U32_MAX) return null;
  yield* ucontext.mmapXaLock.lock();
  try {
    const entry = ucontext.mmapXa.get(pgoff);
    if (entry === undefined || entry.startPgoff !== pgoff || entry.driverRemoved) return null;
    // The check and the reference are two accesses another CPU can come between.
    yield* preempt();
    if (entry.refs === 0) return null;
    entry.refs++;
    entry.tracked.get(true);
    return entry;
  } finally {
    ucontext.mmapXaLock.unlock();
  }
}

/**
 * rdma_user_mmap_entry_get(): the entry a VMA asks for by its page offset, with a reference;
 * null unless the VMA is VM_SHARED and exactly as long as the entry.
 */
export function* rdmaUserMmapEntryGet(
  ucontext: IbUcontext,
  vma: Vma,
): Co<RdmaUserMmapEntry | null> {
  if (!(vma.flags & VM_SHARED)) return null;
  const entry = yield* rdmaUserMmapEntryGetPgoff(ucontext, vma.pgoff);
  if (entry === null) return null;
  if (entry.npages * PAGE_SIZE !== vma.end - vma.start) {
    yield* rdmaUserMmapEntryPut(entry);
    return null;
  }
  return entry;
}

/**
 * rdma_user_mmap_entry_put(): drops a reference; the last one erases the entry's offsets from
 * the xarray and calls the driver's ->mmap_free (so the offsets stay reserved while mapped).
 */
export function* rdmaUserMmapEntryPut(entry: RdmaUserMmapEntry): Co {
  if (entry.refs <= 0)
    bug('warn', `rdma_user_mmap_entry_put of ${entry.tracked.name} with no reference`);
  entry.refs--;
  entry.tracked.put();
  if (entry.refs > 0) return;
  const ucontext = entry.ucontext;
  yield* ucontext.mmapXaLock.lock();
  for (let i = entry.startPgoff; i < entry.startPgoff + entry.npages; i++)
    if (ucontext.mmapXa.get(i) === entry) ucontext.mmapXa.delete(i);
  ucontext.mmapXaLock.unlock();
  entry.freed = true;
  entry.tracked.free();
  ucontext.device.ops.mmapFree?.(entry);
}

/**
 * rdma_user_mmap_entry_remove(): the driver is done with the entry: no new mapping may be made
 * of it (driver_removed, set under the xarray's lock so it fences racing gets), then its
 * reference is dropped. Existing VMAs keep the entry alive. Null is allowed.
 */
export function* rdmaUserMmapEntryRemove(entry: RdmaUserMmapEntry | null): Co {
  if (entry === null) return;
  const ucontext = entry.ucontext;
  // Mutant M2: driver_removed set without the lock (5.5, before 6b3712c0246c made it a fence
  // in 5.6): a get that already checked it can still take its reference after remove returned.
  // (Before 5.5 the model's driver uses the table as its own, fenced, offset lookup.)
  const unfenced = kernel().mutant('mmapio.remove-without-lock');
  const fenced = ucontext.device.era !== 505 && !unfenced;
  if (fenced) yield* ucontext.mmapXaLock.lock();
  entry.driverRemoved = true;
  if (fenced) ucontext.mmapXaLock.unlock();
  entry.tracked.revoke();
  yield* rdmaUserMmapEntryPut(entry);
}

/** The hex offset of an entry, for messages. */
export function entryOffset(entry: RdmaUserMmapEntry): string {
  return hex(entry.startPgoff * PAGE_SIZE);
}
