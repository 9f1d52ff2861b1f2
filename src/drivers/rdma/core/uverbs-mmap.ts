/**
 * The mmap side of the uverbs file (drivers/infiniband/core/uverbs_main.c): ib_uverbs_mmap,
 * the vm_operations of every VMA it makes (rdma_umap_open on a duplicated VMA, rdma_umap_close,
 * rdma_umap_fault after a zap), uverbs_user_mmap_disassociate, which zaps every tracked VMA of a
 * file one mm at a time, and the driver-initiated rdma_user_mmap_disassociate (≥ 6.13).
 *
 * Eras (IbDevice.era): before 501 (4.20) disassociation took mmap_lock for write and cleared
 * VM_SHARED, and the VMAs had no fault handler (M1); from 505 the VMAs hold mmap entries and
 * ib_uverbs_mmap sets the vm_ops itself; in 505 only, entry removal is no fence (M2, in
 * ib-core-uverbs.ts); from 507 the entry of a priv whose mm is exiting is put at once; from
 * 613 disassociation_lock serialises disassociation with mmap and open.
 */
import { bug, kernel } from '../../../kernel/kernel.ts';
import type { Co } from '../../../kernel/task.ts';
import { Errno } from '../../../lib/errors.ts';
import { VM_MAYSHARE, VM_MAYWRITE, VM_SHARED, VM_WRITE } from '../../../mm/constants.ts';
import { mmput } from '../../../mm/exit.ts';
import { sigbus } from '../../../mm/fault.ts';
import type { Mm } from '../../../mm/mm.ts';
import { mmgetNotZero } from '../../../mm/mm-refs.ts';
import { zapVmaPtes } from '../../../mm/pfn-map.ts';
import type { Vma, VmFaultResult, VmOps } from '../../../mm/vma.ts';
import type { IbDevice } from './device.ts';
import {
  type RdmaUmapPriv,
  rdmaUmapPrivInit,
  rdmaUserMmapEntryPut,
  trackEvent,
  ufileOf,
} from './ib-core-uverbs.ts';
import type { UverbsFile } from './uverbs.ts';

/**
 * ib_uverbs_mmap() (the file's ->mmap, mmap_lock held for write): inside disassociate_srcu,
 * the file's context (EIO once the device was disassociated, EINVAL without one), then the
 * driver's ->mmap, under disassociation_lock from 6.13.
 */
export function* ibUverbsMmap(ufile: UverbsFile, vma: Vma): Co {
  const device = ufile.device;
  const udev = device.uverbs;
  const srcu = udev.disassociateSrcu.readLock();
  try {
    if (udev.ibDev === null)
      throw new Errno('EIO', `mmap of ${ufile}: the device was disassociated`);
    const ctx = ufile.ucontext;
    if (ctx === null) throw new Errno('EINVAL', `mmap of ${ufile}, which has no context`);
    if (device.ops.mmap === undefined) throw new Errno('ENODEV', `${device.name} has no mmap`);
    const serialised = device.era >= 613;
    if (serialised) yield* ufile.disassociationLock.lock();
    try {
      if (device.era >= 505) vma.ops = rdmaUmapOps;
      yield* device.ops.mmap(ctx, vma);
    } finally {
      if (serialised) ufile.disassociationLock.unlock();
    }
  } finally {
    udev.disassociateSrcu.readUnlock(srcu);
  }
}

/**
 * rdma_umap_open(): a VMA was duplicated (fork, split, mremap; mmap_lock held for write). The
 * copy gets a tracking of its own — unless a destruction holds hw_destroy_rwsem (a trylock: a
 * blocking wait could deadlock against a disassociation waiting for this mmap_lock), or the
 * context is gone, or memory is short: then it is left untracked and its entries zapped, so a
 * touch faults (SIGBUS).
 */
function* rdmaUmapOpen(vma: Vma): Co {
  const ufile = ufileOf(vma);
  const opriv = vma.privateData as RdmaUmapPriv | null;
  if (opriv === null) return;
  const k = kernel();
  // Mutant: a fork's copy (a VMA of another mm) is not tracked, yet keeps the entries fork
  // copied into it: the per-driver tracking before 5f9794dc94 did not follow fork.
  if (k.mutant('mmapio.no-open-on-fork') && vma.mm !== opriv.vma.mm) {
    vma.privateData = null;
    return;
  }
  const era = ufile.device.era;
  // Mutant M3: a blocking down_read here deadlocks against a destruction that holds the rwsem
  // for write and waits for this mm's mmap_lock (the reason 5f9794dc94 uses a trylock).
  if (k.mutant('mmapio.open-blocking-read')) yield* ufile.hwDestroyRwsem.downRead();
  else if (!ufile.hwDestroyRwsem.downReadTrylock()) return yield* zapUntracked(vma);
  if (era >= 613) yield* ufile.disassociationLock.lock();
  let tracked = false;
  try {
    if (ufile.ucontext !== null) {
      yield* rdmaUmapPrivInit({ vma, entry: null }, vma, opriv.entry);
      tracked = true;
    }
  } finally {
    if (era >= 613) ufile.disassociationLock.unlock();
    ufile.hwDestroyRwsem.upRead();
  }
  if (!tracked) yield* zapUntracked(vma);
}

/** open()'s ZAP: the VMA stays, untracked, with no entries. */
function* zapUntracked(vma: Vma): Co {
  vma.privateData = null;
  yield* zapVmaPtes(vma, vma.start, vma.end - vma.start);
}

/**
 * rdma_umap_close(): the VMA goes (munmap, exit, a split's remnant). Its tracking is unlinked
 * and its entry reference dropped, under umap_lock (the VMA's file reference keeps the file).
 */
function* rdmaUmapClose(vma: Vma): Co {
  const priv = vma.privateData as RdmaUmapPriv | null;
  if (priv === null) return;
  const ufile = ufileOf(vma);
  yield* ufile.umapLock.lock();
  try {
    if (priv.entry !== null) {
      const entry = priv.entry;
      priv.entry = null;
      yield* rdmaUserMmapEntryPut(entry);
    }
    unlinkPriv(ufile, priv);
  } finally {
    ufile.umapLock.unlock();
  }
}

/** list_del(): unlinks a priv if it is still on the list (a disassociation may have done it). */
function unlinkPriv(ufile: UverbsFile, priv: RdmaUmapPriv): void {
  const i = ufile.umaps.indexOf(priv);
  if (i < 0) return;
  ufile.umaps.splice(i, 1);
  trackEvent(ufile, priv.vma, 'unlink');
}

/**
 * rdma_umap_fault(): a touch of a zapped VMA. Untracked: SIGBUS. Read-only: the zero page.
 * Writable: the file's one dummy page (allocated on first use, under umap_lock), shared by every
 * such VMA; SIGBUS if it cannot be allocated.
 */
function* rdmaUmapFault(vma: Vma, addr: number): Co<VmFaultResult> {
  const priv = vma.privateData as RdmaUmapPriv | null;
  if (priv === null) throw sigbus(addr, `${vma} is untracked`);
  const machine = vma.mm.machine;
  if (!(vma.flags & (VM_WRITE | VM_MAYWRITE))) return { page: machine.phys.zeroPage };
  const ufile = ufileOf(vma);
  yield* ufile.umapLock.lock();
  try {
    ufile.disassociatePage ??= yield* machine.allocPage('kernel');
    const page = ufile.disassociatePage;
    if (page === null) throw sigbus(addr, 'no memory for the disassociation page');
    machine.phys.get(page);
    return { page };
  } finally {
    ufile.umapLock.unlock();
  }
}

/** rdma_umap_ops. Before 5.1 (M1) the VMAs had no fault handler: a zapped VMA got SIGBUS. */
export const rdmaUmapOps: VmOps = {
  name: 'rdma_umap_ops',
  open: rdmaUmapOpen,
  close: rdmaUmapClose,
  fault(vma, addr) {
    // Mutant M1 (and the 4.20 era): no ->fault, so do_fault() answers SIGBUS where the zero
    // page or the dummy page was due (67f269b37f9b restored a handler, v5.1).
    const noFault = kernel().mutant('mmapio.disassociate-no-fault');
    if (ufileOf(vma).device.era < 501 || noFault) throw sigbus(addr, `${vma} has no fault handler`);
    return rdmaUmapFault(vma, addr);
  },
};

/** Phase 1: the mm of the first tracked VMA, with a user reference; exiting mms are dropped. */
function* pickMm(ufile: UverbsFile): Co<Mm | null> {
  yield* ufile.umapLock.lock();
  try {
    while (ufile.umaps.length > 0) {
      const priv = ufile.umaps[0]!;
      const mm = priv.vma.mm;
      if (mmgetNotZero(mm)) return mm;
      // The mm is in exit_mmap(), whose close will not find the priv any more.
      unlinkPriv(ufile, priv);
      if (ufile.device.era >= 507 && priv.entry !== null) {
        const entry = priv.entry;
        priv.entry = null;
        yield* rdmaUserMmapEntryPut(entry);
      }
    }
    return null;
  } finally {
    ufile.umapLock.unlock();
  }
}

/**
 * uverbs_user_mmap_disassociate(): zaps every VMA the file tracks, in every mm, one mm at a time
 * (mmap_lock, then umap_lock, as the vm_ops take them); mmput() runs with no lock held. On
 * return no entry of any mm maps the file's device frames and nothing is tracked. Before 6.13
 * the caller holds hw_destroy_rwsem for write; since, disassociation_lock is taken here.
 */
export function* uverbsUserMmapDisassociate(ufile: UverbsFile): Co {
  const era = ufile.device.era;
  if (era < 613 && !ufile.hwDestroyRwsem.isWriteLockedByCurrent())
    bug(
      'warn',
      `uverbs_user_mmap_disassociate of ${ufile} without hw_destroy_rwsem held for write`,
    );
  if (era >= 613) yield* ufile.disassociationLock.lock();
  try {
    for (;;) {
      const mm = yield* pickMm(ufile);
      if (mm === null) break;
      yield* zapMm(ufile, mm);
      yield* mmput(mm);
    }
  } finally {
    if (era >= 613) ufile.disassociationLock.unlock();
  }
  for (const [first, count] of ufile.mappedPfns)
    ufile.device.machine.revokeDevicePfns(first, count, ufile.filp);
}

/** Phase 2: every tracked VMA of `mm` untracked and zapped, with its entry reference dropped. */
function* zapMm(ufile: UverbsFile, mm: Mm): Co {
  const era = ufile.device.era;
  if (era < 501) yield* mm.mmapLock.downWrite();
  else yield* mm.mmapLock.downRead();
  yield* ufile.umapLock.lock();
  try {
    for (const priv of [...ufile.umaps]) {
      const vma = priv.vma;
      if (vma.mm !== mm) continue;
      unlinkPriv(ufile, priv);
      yield* zapVmaPtes(vma, vma.start, vma.end - vma.start);
      if (era < 501) vma.flags &= ~(VM_SHARED | VM_MAYSHARE);
      if (era >= 505 && priv.entry !== null) {
        const entry = priv.entry;
        priv.entry = null;
        yield* rdmaUserMmapEntryPut(entry);
      }
    }
  } finally {
    ufile.umapLock.unlock();
    if (era < 501) mm.mmapLock.upWrite();
    else mm.mmapLock.upRead();
  }
}

/**
 * rdma_user_mmap_disassociate() (≥ 6.13): a driver revokes every mapping of its device (before a
 * reset): each file with a context is disassociated, under the device's lists_mutex. The
 * contexts stay; the driver must refuse new mmaps itself. EOPNOTSUPP before 6.13.
 */
export function* rdmaUserMmapDisassociate(device: IbDevice): Co {
  if (device.era < 613)
    throw new Errno(
      'EOPNOTSUPP',
      `rdma_user_mmap_disassociate needs 6.13 (${device.name} runs ${device.era})`,
    );
  const udev = device.uverbs;
  yield* udev.listsMutex.lock();
  try {
    for (const ufile of [...udev.files])
      if (ufile.ucontext !== null) yield* uverbsUserMmapDisassociate(ufile);
  } finally {
    udev.listsMutex.unlock();
  }
}
