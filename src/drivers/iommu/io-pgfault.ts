/**
 * I/O page faults of SVA devices (drivers/iommu/io-pgfault.c, iommu-sva.c): a PRI page
 * request is reported by the IOMMU's event interrupt (iommu_report_device_fault()), queued on
 * the IOMMU's fault workqueue, resolved by iommu_sva_handle_iopf() in process context like a
 * CPU fault, and answered with a page response the device waits for.
 *
 * @module
 */

import { kernel } from '../../kernel/kernel.ts';
import { Completion } from '../../kernel/sync/completion.ts';
import type { Co } from '../../kernel/task.ts';
import { Work } from '../../kernel/workqueue.ts';
import { checkIndex, isErrno } from '../../lib/errors.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import { mmput } from '../../mm/exit.ts';
import { handleMmFault } from '../../mm/fault.ts';
import { mmgetNotZero } from '../../mm/mm-refs.ts';
import type { SvaBond } from './sva.ts';

/** The page response codes (IOMMU_PAGE_RESP_SUCCESS / _INVALID). */
export type PageResponse = 'success' | 'invalid';

/**
 * iommu_sva_handle_iopf() (iommu_sva_handle_mm() in newer kernels): resolves one page request
 * of `bond`'s PASID with a remote fault (FAULT_FLAG_REMOTE) under mmap_lock for read. INVALID
 * when the address space is exiting (mmget_not_zero() fails), no VMA maps the address
 * (vma_lookup()), the VMA forbids the access, or handle_mm_fault() returns an error; SUCCESS
 * otherwise. An `addr` that is not a non-negative safe integer is EINVAL.
 */
export function* iommuSvaHandleIopf(bond: SvaBond, addr: number, write: boolean): Co<PageResponse> {
  checkIndex(addr, 'iommu_sva_handle_iopf: the faulting address');
  const mm = bond.mm;
  if (!mmgetNotZero(mm)) return 'invalid';
  let status: PageResponse = 'success';
  yield* mm.mmapLock.downRead();
  try {
    yield* handleMmFault(mm, addr, write);
  } catch (e) {
    // vma_lookup() failing, the access check, or VM_FAULT_ERROR: the device gets INVALID.
    if (!isErrno(e)) throw e;
    status = 'invalid';
  } finally {
    mm.mmapLock.upRead();
  }
  yield* mmput(mm);
  return status;
}

/**
 * iommu_report_device_fault() + iopf_handler() + iommu_page_response(): queues the page
 * request for `addr` on the IOMMU's fault workqueue and waits for the response, as the device
 * does (its DMA stalls until the response arrives). A bond released or unbound meanwhile
 * answers INVALID without faulting. An `addr` that is not a non-negative safe integer is EINVAL.
 */
export function* iommuReportDeviceFault(
  bond: SvaBond,
  addr: number,
  write: boolean,
): Co<PageResponse> {
  checkIndex(addr, 'iommu_report_device_fault: the faulting address');
  const page = addr - (addr % PAGE_SIZE);
  const k = kernel();
  if (k.trace.on)
    k.trace.emit('dev-fault', {
      dev: bond.dev,
      mm: bond.mm.id,
      start: page,
      end: page + PAGE_SIZE,
      write,
    });
  const done = new Completion(`${bond.dev}.prq`);
  let response: PageResponse = 'invalid';
  bond.iopfWq.queueWork(
    new Work(`${bond.dev}.iopf`, function* () {
      if (bond.bound && !bond.released) response = yield* iommuSvaHandleIopf(bond, page, write);
      done.complete();
    }),
  );
  yield* done.wait();
  return response;
}
