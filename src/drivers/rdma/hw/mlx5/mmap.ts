/**
 * What the mlx5-like driver maps to user space (drivers/infiniband/hw/mlx5/main.c and dm.c):
 * the context's doorbell page (UAR, one BAR page inserted as an mmap entry at
 * alloc_ucontext), device memory allocations (MEMIC, ibv_alloc_dm: several BAR pages), the
 * device's free-running clock (one BAR page every context may map, read-only, without an
 * entry), and mlx5_ib_mmap, which maps them with rdma_user_mmap_io. Its disassociate_ucontext
 * is the empty stub real drivers have: it only says the device can be unplugged with files
 * open. A reset revokes every mapping first, as hns does with rdma_user_mmap_disassociate.
 */
import type { Co } from '../../../../kernel/task.ts';
import { Errno } from '../../../../lib/errors.ts';
import { PAGE_SIZE, VM_MAYWRITE, VM_WRITE } from '../../../../mm/constants.ts';
import type { Vma } from '../../../../mm/vma.ts';
import {
  RdmaUserMmapEntry,
  rdmaUserMmapEntryGet,
  rdmaUserMmapEntryGetPgoff,
  rdmaUserMmapEntryInsertRange,
  rdmaUserMmapEntryPut,
  rdmaUserMmapEntryRemove,
  rdmaUserMmapIo,
} from '../../core/ib-core-uverbs.ts';
import { IbDm, type IbUcontext } from '../../core/objects.ts';
import { rdmaUserMmapDisassociate } from '../../core/uverbs-mmap.ts';
import type { Mlx5Device } from './main.ts';

/** Device memory the model gives one context at most, in pages. */
export const MAX_DM_PAGES = 64;

/** Page offsets carry a command above bit 8 (MLX5_IB_MMAP_CMD_SHIFT). */
const CMD_SHIFT = 8;
/** MLX5_IB_MMAP_CORE_CLOCK (5): the clock page's offset, in pages. */
export const CORE_CLOCK_PGOFF = 5 << CMD_SHIFT;
/** Entries get offsets in [MLX5_IB_MMAP_OFFSET_START << 16, (OFFSET_END + 1) << 16), in pages. */
const ENTRY_PGOFF_MIN = 9 << 16;
const ENTRY_PGOFF_MAX = (256 << 16) - 1;
/** What the clock page reads (nonzero, so a read of the zero page instead is seen). */
export const CLOCK_VALUE = 0x5eed;

/** The driver's part of a context: its UAR entry and mmap offset. */
interface Mlx5Ucontext {
  readonly uar: RdmaUserMmapEntry;
  readonly uarOffset: number;
}

/** A fresh mmap entry over `pages` new BAR pages of the device. */
function barEntry(
  dev: Mlx5Device,
  ctx: IbUcontext,
  pages: number,
  what: string,
): RdmaUserMmapEntry {
  const first = dev.machine.allocDevicePfns(pages);
  dev.barPfns.push([first, pages]);
  return new RdmaUserMmapEntry(
    ctx,
    first,
    pages * PAGE_SIZE,
    `${ctx.ufile}/${what}${dev.objectId()}`,
  );
}

/** mlx5_ib_alloc_ucontext(): the context's doorbell page, mappable at the returned offset. */
export function* mlx5AllocUcontext(dev: Mlx5Device, ctx: IbUcontext): Co {
  const uar = barEntry(dev, ctx, 1, 'uar');
  const uarOffset = yield* insertEntry(ctx, uar);
  ctx.driverData = { uar, uarOffset } satisfies Mlx5Ucontext;
}

/** The mmap offset of a context's doorbell page (what user space gets from alloc_ucontext). */
export function uarOffset(ctx: IbUcontext): number {
  return (ctx.driverData as Mlx5Ucontext).uarOffset;
}

/** mlx5_ib_dealloc_ucontext(): the doorbell entry is removed (its VMAs keep it alive). */
export function* mlx5DeallocUcontext(ctx: IbUcontext): Co {
  const data = ctx.driverData as Mlx5Ucontext | null;
  if (data === null) return;
  ctx.driverData = null;
  yield* rdmaUserMmapEntryRemove(data.uar);
}

/** An entry placed in the driver's range of offsets; returns its mmap offset. */
function insertEntry(ctx: IbUcontext, entry: RdmaUserMmapEntry): Co<number> {
  return rdmaUserMmapEntryInsertRange(ctx, entry, ENTRY_PGOFF_MIN, ENTRY_PGOFF_MAX);
}

/** The device's clock page (one per device, created on first use), reading CLOCK_VALUE. */
function clockPfn(dev: Mlx5Device): number {
  if (dev.clockPfn === null) {
    const pfn = dev.machine.allocDevicePfns(1);
    dev.barPfns.push([pfn, 1]);
    const value = new Uint8Array(4);
    new DataView(value.buffer).setUint32(0, CLOCK_VALUE, true);
    dev.machine.deviceMemory(pfn).write(0, value, 0, 4);
    dev.clockPfn = pfn;
  }
  return dev.clockPfn;
}

/**
 * mlx5_ib_mmap(): at CORE_CLOCK_PGOFF the device's clock page, read-only (EPERM for a writable
 * mapping; VM_MAYWRITE is cleared so mprotect cannot make it writable) and untied to any
 * entry; elsewhere the entry at the VMA's offset (with a reference), mapped with
 * rdma_user_mmap_io, then the reference dropped (the VMA holds its own). EINVAL when the
 * offset names no live entry or the length does not match; EIO while a reset revokes.
 */
export function* mlx5Mmap(dev: Mlx5Device, ctx: IbUcontext, vma: Vma): Co {
  if (dev.mmapRevoked) throw new Errno('EIO', `mmap: ${dev.name} is being reset`);
  if (vma.pgoff === CORE_CLOCK_PGOFF) {
    if (vma.end - vma.start !== PAGE_SIZE)
      throw new Errno('EINVAL', 'mmap: the clock page is one page long');
    if (vma.flags & VM_WRITE) throw new Errno('EPERM', 'mmap: the clock page is read-only');
    vma.flags &= ~VM_MAYWRITE;
    return yield* rdmaUserMmapIo(ctx, vma, clockPfn(dev), PAGE_SIZE, null);
  }
  // Before 5.5 the driver looked its offsets up itself, whatever the mapping's sharing.
  const entry =
    dev.era >= 505 ? yield* rdmaUserMmapEntryGet(ctx, vma) : yield* legacyLookup(ctx, vma);
  if (entry === null)
    throw new Errno(
      'EINVAL',
      `mmap: no mappable device memory at offset ${vma.pgoff * PAGE_SIZE} of ${vma.end - vma.start} bytes`,
    );
  try {
    // Before 5.5 rdma_user_mmap_io() took no entry: the VMA held nothing of the driver's.
    const held = dev.era >= 505 ? entry : null;
    yield* rdmaUserMmapIo(ctx, vma, entry.pfn, entry.npages * PAGE_SIZE, held);
  } finally {
    yield* rdmaUserMmapEntryPut(entry);
  }
}

/** The entry at the VMA's offset if it is exactly as long as the VMA, with a reference. */
function* legacyLookup(ctx: IbUcontext, vma: Vma): Co<RdmaUserMmapEntry | null> {
  const entry = yield* rdmaUserMmapEntryGetPgoff(ctx, vma.pgoff);
  if (entry === null || entry.npages * PAGE_SIZE === vma.end - vma.start) return entry;
  yield* rdmaUserMmapEntryPut(entry);
  return null;
}

/** mlx5_ib_mmap_free(): the entry's last reference is gone; its BAR pages may be reused. */
export function mlx5MmapFree(_entry: RdmaUserMmapEntry): void {}

/** mlx5_ib_alloc_dm(): `pages` of device memory, mappable at the object's offset. */
export function* mlx5AllocDm(dev: Mlx5Device, ctx: IbUcontext, pages: number): Co<IbDm> {
  if (!Number.isSafeInteger(pages) || pages < 1 || pages > MAX_DM_PAGES)
    throw new Errno('EINVAL', `alloc_dm: ${String(pages)} pages (1 to ${MAX_DM_PAGES})`);
  const entry = barEntry(dev, ctx, pages, 'dm');
  try {
    const offset = yield* insertEntry(ctx, entry);
    return new IbDm(ctx, pages, offset, entry);
  } catch (e) {
    dev.barPfns.pop(); // the frames barEntry() took go back unused
    throw e;
  }
}

/** mlx5_ib_dealloc_dm(): the entry is removed; mappings of it keep it until they go. */
export function* mlx5DeallocDm(dm: IbDm): Co {
  dm.freed = true;
  yield* rdmaUserMmapEntryRemove(dm.entry);
}

/**
 * A reset of the device (what hns_roce does before resetting its hardware): new mmaps are
 * refused from now on, then every mapping of every file is revoked with
 * rdma_user_mmap_disassociate (6.13 and later). The files and contexts stay.
 */
export function* mlx5ResetRevoke(dev: Mlx5Device): Co {
  dev.mmapRevoked = true;
  yield* rdmaUserMmapDisassociate(dev);
}
