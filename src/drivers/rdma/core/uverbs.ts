/**
 * The uverbs character device (drivers/infiniband/core/uverbs_main.c): struct ib_uverbs_device
 * (one per ib_device, with the SRCU that fences system calls against disassociation), and a
 * struct ib_uverbs_file per open with its struct file; ib_uverbs_open, ib_uverbs_get_context,
 * and the descriptor's close, whose last reference releases the file (ib_uverbs_close →
 * uverbs_destroy_ufile_hw with reason CLOSE). A VMA of the file holds a reference too, so the
 * file outlives every VMA mapping it.
 */
import { Mutex } from '../../../kernel/sync/mutex.ts';
import { RwSemaphore } from '../../../kernel/sync/rwsem.ts';
import { Srcu } from '../../../kernel/sync/srcu.ts';
import type { Co } from '../../../kernel/task.ts';
import { Errno } from '../../../lib/errors.ts';
import type { File } from '../../../mm/file.ts';
import type { Page } from '../../../mm/page.ts';
import type { Process } from '../../../mm/process.ts';
import type { IbDevice } from './device.ts';
import type { RdmaUmapPriv } from './ib-core-uverbs.ts';
import { IbUcontext } from './objects.ts';
import { uverbsDestroyUfileHw } from './rdma-core.ts';
import { UcontextOdp2014 } from './umem-odp-2014.ts';
import { ibUverbsMmap } from './uverbs-mmap.ts';

/** struct ib_uverbs_device. */
export class UverbsDevice {
  readonly device: IbDevice;
  /** ib_dev: the device while it is registered; null once it was disassociated (unplugged). */
  ibDev: IbDevice | null;
  /** disassociate_srcu: every system call runs inside it; disassociation waits for them. */
  readonly disassociateSrcu: Srcu;
  /** lists_mutex: guards the list of open files. */
  readonly listsMutex: Mutex;
  /** uverbs_file_list. */
  readonly files: UverbsFile[] = [];
  /** The character device was deleted: no new open. */
  cdevDeleted = false;
  /** The uAPI handlers were replaced by -EIO stubs (uverbs_disassociate_api). */
  apiDisassociated = false;

  constructor(device: IbDevice) {
    this.device = device;
    this.ibDev = device;
    this.disassociateSrcu = new Srcu(`${device.name}.disassociate_srcu`);
    this.listsMutex = new Mutex(`${device.name}.lists_mutex`, 'uverbs_lists_mutex');
  }
}

/** struct ib_uverbs_file: one open of the device. */
export class UverbsFile {
  readonly id: number;
  readonly device: IbDevice;
  /** The struct file: the descriptor's reference and one per VMA mapping it. */
  readonly filp: File;
  /** The ucontext, once created; null again after destruction. */
  ucontext: IbUcontext | null = null;
  /** hw_destroy_rwsem: held for write while the file's hardware objects are destroyed. */
  readonly hwDestroyRwsem: RwSemaphore;
  /** umap_lock: guards umaps and the dummy page; taken inside mmap_lock. */
  readonly umapLock: Mutex;
  /** umaps: a priv per VMA that maps device memory of this file. */
  readonly umaps: RdmaUmapPriv[] = [];
  /** disassociate_page: the one dummy page writable VMAs see after disassociation. */
  disassociatePage: Page | null = null;
  /** disassociation_lock (≥ 6.13): serialises disassociation with mmap and open. */
  readonly disassociationLock: Mutex;
  /** Device frame ranges ever mapped through the file (what a disassociation revokes). */
  readonly mappedPfns: [number, number][] = [];
  /** The descriptor was closed. */
  closed = false;
  /** The file was released (its last reference dropped). */
  released = false;

  constructor(device: IbDevice) {
    this.id = device.objectId();
    this.device = device;
    const name = `${device.name}/ufile${this.id}`;
    this.hwDestroyRwsem = new RwSemaphore(`${name}.hw_destroy_rwsem`, 'hw_destroy_rwsem');
    this.umapLock = new Mutex(`${name}.umap_lock`, 'umap_lock');
    this.disassociationLock = new Mutex(`${name}.disassociation_lock`, 'disassociation_lock');
    this.filp = device.machine.createFile(`uverbs:${name}`, {
      ops: {
        mmap: (_f, vma) => ibUverbsMmap(this, vma),
        release: () => ibUverbsRelease(this),
      },
    });
    this.filp.refs = 1;
    this.filp.privateData = this;
  }

  toString(): string {
    return `${this.device.name}/ufile${this.id}`;
  }
}

/**
 * ib_uverbs_open(): opens the device. ENODEV once its character device is gone; EIO while it
 * is being disassociated.
 */
export function* ibUverbsOpen(device: IbDevice): Co<UverbsFile> {
  const udev = device.uverbs;
  if (udev.cdevDeleted) throw new Errno('ENODEV', `${device.name} was unplugged`);
  const srcu = udev.disassociateSrcu.readLock();
  yield* udev.listsMutex.lock();
  try {
    if (udev.ibDev === null) throw new Errno('EIO', `${device.name} is being disassociated`);
    const file = new UverbsFile(device);
    udev.files.push(file);
    return file;
  } finally {
    udev.listsMutex.unlock();
    udev.disassociateSrcu.readUnlock(srcu);
  }
}

/**
 * ib_uverbs_get_context(): the file's ucontext, owned by the calling process, and the
 * driver's ->alloc_ucontext. EINVAL when the file already has one; EIO after disassociation.
 */
export function* ibUverbsGetContext(file: UverbsFile, caller: Process): Co<IbUcontext> {
  if (file.closed) throw new Errno('EBADF', `${file} is closed`);
  const udev = file.device.uverbs;
  const srcu = udev.disassociateSrcu.readLock();
  try {
    if (udev.ibDev === null || udev.apiDisassociated)
      throw new Errno('EIO', `${file.device.name} was disassociated`);
    if (file.ucontext !== null) throw new Errno('EINVAL', `${file} already has a context`);
    if (caller.mm === null) throw new Errno('EINVAL', `${caller} has exited`);
    if (!file.hwDestroyRwsem.downReadTrylock())
      throw new Errno('EIO', `${file} is being destroyed`);
    try {
      const device = file.device;
      const hook = device.ops.invalidateRange;
      const odp = new UcontextOdp2014(
        `${file}`,
        hook === undefined ? null : (u, s, e) => hook.call(device.ops, u, s, e),
        device.odpDesign === 2018,
      );
      odp.fixExit = device.fixOdp2014Exit;
      const ctx = new IbUcontext(device, file, caller, odp);
      file.ucontext = ctx;
      device.ucontexts.add(ctx);
      if (device.ops.allocUcontext !== undefined) yield* device.ops.allocUcontext(ctx);
      return ctx;
    } finally {
      file.hwDestroyRwsem.upRead();
    }
  } finally {
    udev.disassociateSrcu.readUnlock(srcu);
  }
}

/**
 * close(2) of the file's descriptor: drops its reference. The file is released (its objects
 * destroyed) now if no VMA maps it, else when the last such VMA goes. EBADF when closed twice.
 */
export function* ibUverbsClose(file: UverbsFile): Co {
  if (file.closed) throw new Errno('EBADF', `${file} is already closed`);
  file.closed = true;
  yield* file.filp.put();
}

/**
 * ib_uverbs_close() (the file's ->release): destroys what the file still owns (reason CLOSE),
 * leaves the device's list, and frees the dummy page.
 */
function* ibUverbsRelease(file: UverbsFile): Co {
  yield* uverbsDestroyUfileHw(file, 'CLOSE');
  const udev = file.device.uverbs;
  yield* udev.listsMutex.lock();
  const i = udev.files.indexOf(file);
  if (i >= 0) udev.files.splice(i, 1);
  udev.listsMutex.unlock();
  file.released = true;
  if (file.disassociatePage !== null) {
    file.device.machine.phys.put(file.disassociatePage);
    file.disassociatePage = null;
  }
}
