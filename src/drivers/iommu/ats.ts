/**
 * The DMA of an SVA device (PCIe ATS and PRI against the IOMMU): the address is looked up in
 * the IOTLB/ATC; a miss is an ATS translation request, for which the IOMMU walks the CPU page
 * table itself and caches what it found; a non-present or insufficient entry makes the device
 * send a PRI page request (io-pgfault.ts) and retry the translation once it is answered.
 *
 * @module
 */

import { charge } from '../../cost/charge.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { Co } from '../../kernel/task.ts';
import { checkIndex } from '../../lib/errors.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import type { PageData } from '../../mm/page-data.ts';
import { frameData, pageWalk } from '../../mm/page-walk.ts';
import type { CachedTranslation } from '../../mm/tlb-cache.ts';
import { iommuReportDeviceFault } from './io-pgfault.ts';
import type { SvaBond } from './sva.ts';

/**
 * Page requests one DMA makes before the device gives up on it: each SUCCESS response is
 * followed by a new translation, which a racing invalidation can undo again.
 */
const PRI_TRIES = 8;

/**
 * One DMA of `bond`'s device at `addr` (`onData` runs on the frame's bytes in the same step as
 * the access). False when the DMA fails: the PASID no longer translates (unbound, or the
 * process exited), a page response said INVALID, or the retries ran out. An `addr` that is not
 * a non-negative safe integer is EINVAL.
 */
export function* svaDma(
  bond: SvaBond,
  addr: number,
  write: boolean,
  onData?: (data: PageData, within: number) => void,
): Co<boolean> {
  checkIndex(addr, 'svaDma: the DMA address');
  const page = addr - (addr % PAGE_SIZE);
  for (let i = 0; i < PRI_TRIES; i++) {
    yield;
    if (!bond.bound || bond.released) return false;
    let t: CachedTranslation | undefined = bond.iotlb.lookup(page);
    if (t === undefined || (write && !t.writable)) {
      const pte = pageWalk(bond.mm, page, write);
      t =
        pte === undefined ? undefined : bond.iotlb.fill(page, pte, frameData(bond.mm, pte), write);
    }
    if (t !== undefined) {
      const k = kernel();
      if (k.trace.on) k.trace.emit('dev-dma', { dev: bond.dev, pfn: t.pfn, gen: t.gen, write });
      onData?.(t.data, addr - page);
      return true;
    }
    charge('iommu.prq');
    if ((yield* iommuReportDeviceFault(bond, addr, write)) === 'invalid') return false;
  }
  return false;
}

/** A DMA read of the little-endian 32-bit word at `addr`; null when the DMA failed. */
export function* svaDmaReadU32(bond: SvaBond, addr: number): Co<number | null> {
  let value: number | null = null;
  const ok = yield* svaDma(bond, addr, false, (data, within) => {
    const b = new Uint8Array(4);
    data.read(within, b, 0, 4);
    value = b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24);
  });
  return ok ? value : null;
}

/** A DMA write of a little-endian 32-bit word at `addr`; false when the DMA failed. */
export function* svaDmaWriteU32(bond: SvaBond, addr: number, value: number): Co<boolean> {
  const b = new Uint8Array([
    value & 0xff,
    (value >>> 8) & 0xff,
    (value >>> 16) & 0xff,
    value >>> 24,
  ]);
  return yield* svaDma(bond, addr, true, (data, within) => data.write(within, b, 0, 4));
}
