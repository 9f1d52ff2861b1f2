/**
 * Destroying a verbs file's objects (drivers/infiniband/core/rdma_core.c:
 * uverbs_destroy_ufile_hw, ufile_destroy_ucontext) and taking a device away under open files
 * (uverbs_main.c: ib_uverbs_remove_one, ib_uverbs_free_hw_resources, ib_unregister_device).
 */
import { bug } from '../../../kernel/kernel.ts';
import type { Co } from '../../../kernel/task.ts';
import type { IbDevice } from './device.ts';
import type { UverbsFile } from './uverbs.ts';
import { uverbsUserMmapDisassociate } from './uverbs-mmap.ts';

/** enum rdma_remove_reason: the file is closing, or the device is going away. */
export type RemoveReason = 'CLOSE' | 'DRIVER_REMOVE';

/**
 * uverbs_destroy_ufile_hw(): with hw_destroy_rwsem held for write, every object the file's
 * context owns is destroyed (QPs, MRs, device memory, then CQs and PDs), then the context.
 */
export function* uverbsDestroyUfileHw(ufile: UverbsFile, reason: RemoveReason): Co {
  yield* ufile.hwDestroyRwsem.downWrite();
  try {
    const ctx = ufile.ucontext;
    if (ctx === null) return;
    const ops = ufile.device.ops;
    for (const qp of [...ctx.qps]) {
      ctx.qps.delete(qp);
      qp.pd.usecnt--;
      qp.sendCq.usecnt--;
      qp.recvCq.usecnt--;
      yield* ops.destroyQp(qp);
    }
    for (const mr of [...ctx.mrs]) {
      ctx.mrs.delete(mr);
      mr.pd.usecnt--;
      yield* ops.deregMr(mr);
    }
    for (const dm of [...ctx.dms]) {
      ctx.dms.delete(dm);
      yield* ops.deallocDm!(dm);
    }
    for (const cq of ctx.cqs) cq.dead = true;
    for (const pd of ctx.pds) pd.dead = true;
    ctx.cqs.clear();
    ctx.pds.clear();
    yield* ufileDestroyUcontext(ufile, reason);
  } finally {
    ufile.hwDestroyRwsem.upWrite();
  }
}

/**
 * ufile_destroy_ucontext(): for DRIVER_REMOVE, every mapping of the file is revoked first
 * (no VMA can exist at CLOSE: each holds a reference on the file); then the driver's
 * ->dealloc_ucontext, which must leave mmap_xa empty (WARN otherwise), and the context is gone.
 */
function* ufileDestroyUcontext(ufile: UverbsFile, reason: RemoveReason): Co {
  const ctx = ufile.ucontext!;
  const device = ufile.device;
  if (reason === 'DRIVER_REMOVE') {
    yield* uverbsUserMmapDisassociate(ufile);
    device.ops.disassociateUcontext?.(ctx);
  }
  if (device.ops.deallocUcontext !== undefined) yield* device.ops.deallocUcontext(ctx);
  if (device.era >= 505 && ctx.mmapXa.size > 0)
    bug('warn', `${ufile}: ${ctx.mmapXa.size} mmap offsets still in mmap_xa at dealloc_ucontext`);
  device.ucontexts.delete(ctx);
  ufile.ucontext = null;
}

/**
 * ib_uverbs_free_hw_resources(): no new system call reaches the device (ib_dev cleared, then
 * synchronize_srcu waits out the ones inside), every open file is destroyed for DRIVER_REMOVE
 * (lists_mutex dropped around each: the destruction may release files), and the uAPI answers
 * -EIO from then on.
 */
function* ibUverbsFreeHwResources(device: IbDevice): Co {
  const udev = device.uverbs;
  udev.ibDev = null;
  yield* udev.disassociateSrcu.synchronize();
  yield* udev.listsMutex.lock();
  while (udev.files.length > 0) {
    const file = udev.files.shift()!;
    udev.listsMutex.unlock();
    yield* uverbsDestroyUfileHw(file, 'DRIVER_REMOVE');
    yield* udev.listsMutex.lock();
  }
  udev.listsMutex.unlock();
  udev.apiDisassociated = true;
}

/**
 * ib_unregister_device() → ib_uverbs_remove_one(): hot unplug. No new open (the character
 * device is deleted); a device that can disassociate has every file's objects and mappings
 * torn down at once and the call returns with the files still open; then the hardware is gone,
 * and so are its BAR frames. (A device without ->disassociate_ucontext would wait for every
 * file to close: not modelled, the call refuses it.)
 */
export function* ibUnregisterDevice(device: IbDevice): Co {
  if (device.unregistered) return;
  const udev = device.uverbs;
  udev.cdevDeleted = true;
  if (device.ops.disassociateUcontext === undefined)
    bug('warn', `${device.name}: hot unplug of a device that cannot disassociate is not modelled`);
  yield* ibUverbsFreeHwResources(device);
  device.unregistered = true;
  for (const [first, count] of device.barPfns) device.machine.revokeDevicePfns(first, count, null);
}
