/**
 * Mapping device frames that have no struct page (mm/memory.c): remap_pfn_range(), which a
 * driver's ->mmap calls to fill every entry of a VMA at once, and zap_vma_ptes(), which a driver
 * calls to take them away again (one CLEAR invalidation, no page freed).
 */
import { bug } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import {
  hex,
  PAGE_SIZE,
  pageAligned,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_IO,
  VM_PFNMAP,
} from './constants.ts';
import { mmPath } from './mm-path.ts';
import type { Vma } from './vma.ts';
import { zapRange } from './zap.ts';

/**
 * remap_pfn_range(): maps [addr, addr + size) of `vma` to the device frames from `pfn` on,
 * writable where the VMA may write, and marks the VMA VM_IO | VM_PFNMAP | VM_DONTEXPAND |
 * VM_DONTDUMP. The caller holds mmap_lock for write (it is called from ->mmap). EINVAL for an
 * unaligned or out-of-VMA range; EAGAIN when an entry is already present.
 */
export function* remapPfnRange(vma: Vma, addr: number, pfn: number, size: number): Co {
  return yield* mmPath('remap_pfn_range', vma.mm, remapPfnRangeBody(vma, addr, pfn, size));
}

function* remapPfnRangeBody(vma: Vma, addr: number, pfn: number, size: number): Co {
  if (
    !pageAligned(addr) ||
    !pageAligned(size) ||
    size <= 0 ||
    addr < vma.start ||
    addr + size > vma.end
  )
    throw new Errno(
      'EINVAL',
      `remap_pfn_range: [${hex(addr)}, +${size}) is not a page range of ${vma}`,
    );
  if (!Number.isSafeInteger(pfn) || pfn < 0)
    throw new Errno('EINVAL', `remap_pfn_range: bad pfn ${String(pfn)}`);
  vma.flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
  const mm = vma.mm;
  yield* mm.ptl.lock();
  try {
    for (let off = 0; off < size; off += PAGE_SIZE)
      if (mm.pte(addr + off) !== undefined)
        throw new Errno('EAGAIN', `remap_pfn_range: ${hex(addr + off)} is already mapped`);
    for (let off = 0; off < size; off += PAGE_SIZE) {
      mm.setPte(addr + off, {
        kind: 'pfn',
        page: null,
        swap: 0,
        pfn: pfn + off / PAGE_SIZE,
        readable: vma.readable,
        writable: vma.writable && vma.isShared,
        dirty: false,
        accessed: false,
      });
    }
  } finally {
    mm.ptl.unlock();
  }
}

/**
 * zap_vma_ptes(): removes the entries of [addr, addr + size) of a VM_PFNMAP VMA through
 * zap_page_range_single() (one CLEAR invalidation). Does nothing on any other VMA. The caller
 * holds mmap_lock.
 */
export function* zapVmaPtes(vma: Vma, addr: number, size: number): Co {
  return yield* mmPath('zap_vma_ptes', vma.mm, zapVmaPtesBody(vma, addr, size));
}

function* zapVmaPtesBody(vma: Vma, addr: number, size: number): Co {
  if (!(vma.flags & VM_PFNMAP)) return;
  if (addr < vma.start || addr + size > vma.end)
    bug('warn', `zap_vma_ptes: [${hex(addr)}, +${size}) is outside ${vma}`);
  if (!vma.mm.mmapLock.isLockedByCurrent()) bug('warn', 'zap_vma_ptes without mmap_lock held');
  yield* zapRange(vma.mm, [vma], addr, addr + size, 'CLEAR');
}
