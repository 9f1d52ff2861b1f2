/**
 * IOMMU shared virtual addressing: a device bound to a process address space under a PASID
 * translates its DMA addresses through the CPU page table itself (PCIe ATS/PRI; Intel SVM,
 * Arm SMMUv3 SVA, AMD IOMMUv2). Models:
 *
 * - iommu_sva_bind_device() (drivers/iommu/iommu-sva.c, with the SVA domain of
 *   intel/svm.c and arm-smmu-v3-sva.c): mmgrab() and mmu_notifier_register() of a notifier
 *   with only the secondary-TLB hook and ->release;
 * - the hook, intel_arch_invalidate_secondary_tlbs() / arm_smmu_mm_arch_invalidate_secondary_tlbs():
 *   invalidates the IOTLB (and the device's ATC) over the range, under the PTL, without sleeping;
 * - ->release, intel_mm_release() / arm_smmu_mm_release(): the process exits while still
 *   bound; the PASID entry stops translating (new requests abort) and everything is flushed;
 * - iommu_sva_unbind_device(): detach the PASID (flush everything), mmu_notifier_unregister(),
 *   mmdrop();
 * - with `getPut`, the SVA of arm-smmu-v3 from 5.11 to 6.6 (arm_smmu_mmu_notifier_get() and
 *   _put()): the notifier is taken with mmu_notifier_get() and dropped with
 *   mmu_notifier_put(), which frees it after an SRCU grace period.
 *
 * The device side (ATS translation, PRI page requests) is in ats.ts, the page-request handler
 * in io-pgfault.ts. The mutant `sva.flush-at-range-start` invalidates from
 * invalidate_range_start instead of the hook, as an IOMMU driver had to before the hook
 * existed (0f0a327fa12c, v3.19).
 *
 * @module
 */

import { kernel } from '../../kernel/kernel.ts';
import type { Co } from '../../kernel/task.ts';
import { Workqueue } from '../../kernel/workqueue.ts';
import { Errno } from '../../lib/errors.ts';
import { TASK_SIZE } from '../../mm/constants.ts';
import type { Mm } from '../../mm/mm.ts';
import { mmdrop, mmgrab } from '../../mm/mm-refs.ts';
import {
  mmuNotifierGet,
  mmuNotifierPut,
  mmuNotifierRegister,
  mmuNotifierUnregister,
} from '../../mm/mmu-notifier-register.ts';
import { MmuNotifier, type MmuNotifierOps } from '../../mm/mmu-notifier-types.ts';
import { type CacheGeometry, TranslationCache } from '../../mm/tlb-cache.ts';

/**
 * The IOTLB and the device's ATC as one cache: a few dozen entries on real parts, 32 here in
 * 8 sets of 4, so that worlds of a few pages see evictions.
 */
export const IOTLB: CacheGeometry = { sets: 8, ways: 4 };

/** A device bound to an mm (struct iommu_sva with its iommu_domain of type IOMMU_DOMAIN_SVA). */
export class SvaBond {
  /** Device name in traces and reports. */
  readonly dev: string;
  readonly mm: Mm;
  readonly pasid: number;
  /** The IOTLB and ATC entries of this PASID. */
  readonly iotlb: TranslationCache;
  /** The fault queue's workqueue (iopf_queue: one ordered worker per IOMMU). */
  readonly iopfWq: Workqueue;
  readonly notifier: MmuNotifier;
  /** Taken with mmu_notifier_get() and dropped with mmu_notifier_put() (arm-smmu-v3, 5.11-6.6). */
  readonly getPut: boolean;
  /** Attached and not yet unbound. */
  bound = false;
  /** ->release ran: the PASID entry no longer translates, requests abort. */
  released = false;

  constructor(dev: string, mm: Mm, pasid: number, getPut = false) {
    this.dev = dev;
    this.getPut = getPut;
    this.mm = mm;
    this.pasid = pasid;
    this.iotlb = new TranslationCache(dev, 'iotlb', mm, IOTLB);
    this.iopfWq = new Workqueue(`iopf-${dev}`);
    const self = this;
    const ops: MmuNotifierOps = kernel().mutant('sva.flush-at-range-start')
      ? {
          client: 'sva',
          // Mutant: the IOTLB is invalidated when the invalidation starts, before any entry
          // is cleared; the IOMMU may walk the old entry again before the clear and keep it
          // after the frame is freed, with nothing left to tell it.
          *invalidateRangeStart(_sub, range) {
            self.invalidate(range.start, range.end);
            return 0;
          },
          *release() {
            self.release();
          },
        }
      : {
          client: 'sva',
          archInvalidateSecondaryTlbs(_sub, _mm, start, end) {
            self.invalidate(start, end);
          },
          *release() {
            self.release();
          },
        };
    // mmu_notifier_get() allocates through the ops: this bond's own notifier.
    if (getPut) ops.allocNotifier = () => self.notifier;
    this.notifier = new MmuNotifier(ops, this);
  }

  /** IOTLB and ATC invalidation of [start, end) for this PASID (qi_flush_piotlb + dev-IOTLB). */
  invalidate(start: number, end: number): void {
    this.iotlb.invalidate(start, end);
    const k = kernel();
    if (k.trace.on)
      k.trace.emit('iotlb-flush', { tlb: this.iotlb.name, mm: this.mm.id, start, end });
  }

  /** intel_mm_release() / arm_smmu_mm_release(): stop translating, flush everything. */
  private release(): void {
    this.released = true;
    this.invalidate(0, TASK_SIZE);
  }
}

/** PASIDs handed out so far, per kernel (iommu_global_pasid_ida; 0 is reserved for DMA without a PASID). */
const pasids = new WeakMap<object, number>();

/**
 * iommu_sva_bind_device(): binds device `dev` to `mm`, which must still have users. The bond
 * holds an mm_count reference (the mm_struct, not the address space) until unbind.
 */
export function* iommuSvaBindDevice(dev: string, mm: Mm, getPut = false): Co<SvaBond> {
  if (mm.users <= 0 || mm.exited)
    throw new Errno('EINVAL', `iommu_sva_bind_device: mm${mm.id} has no users left`);
  const k = kernel();
  const pasid = (pasids.get(k) ?? 0) + 1;
  pasids.set(k, pasid);
  const bond = new SvaBond(dev, mm, pasid, getPut);
  mmgrab(mm);
  if (getPut) yield* mmuNotifierGet(bond.notifier.ops, mm);
  else yield* mmuNotifierRegister(bond.notifier, mm);
  bond.bound = true;
  return bond;
}

/**
 * iommu_sva_unbind_device(): detaches the PASID (every IOTLB entry flushed, no new
 * translation), waits for the page requests in flight, unregisters the notifier and drops the
 * mm_count reference. Unbinding twice is EINVAL.
 */
export function* iommuSvaUnbindDevice(bond: SvaBond): Co {
  if (!bond.bound) throw new Errno('EINVAL', `iommu_sva_unbind_device: ${bond.dev} is not bound`);
  bond.bound = false;
  bond.invalidate(0, TASK_SIZE);
  // iopf_queue_flush_dev(): no handler may still be working on this PASID.
  yield* bond.iopfWq.flush();
  if (bond.getPut) yield* mmuNotifierPut(bond.notifier);
  else yield* mmuNotifierUnregister(bond.notifier, bond.mm);
  mmdrop(bond.mm);
}
