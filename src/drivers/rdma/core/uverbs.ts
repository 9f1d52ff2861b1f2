/**
 * The uverbs character device (drivers/infiniband/core/uverbs_main.c): a file per open
 * (struct ib_uverbs_file), the ucontext created through it (ib_uverbs_get_context), and the
 * teardown at close (uverbs_destroy_ufile_hw with reason CLOSE: every object the file still
 * owns is destroyed, QPs before MRs before CQs and PDs, then the ucontext).
 */
import { RwSemaphore } from '../../../kernel/sync/rwsem.ts';
import type { Co } from '../../../kernel/task.ts';
import { Errno } from '../../../lib/errors.ts';
import type { Process } from '../../../mm/process.ts';
import type { IbDevice } from './device.ts';
import { IbUcontext } from './objects.ts';
import { UcontextOdp2014 } from './umem-odp-2014.ts';

/** struct ib_uverbs_file: one open of the device. */
export class UverbsFile {
  readonly id: number;
  readonly device: IbDevice;
  /** The ucontext, once created; null again after destruction. */
  ucontext: IbUcontext | null = null;
  /** hw_destroy_rwsem: held for write while the file's hardware objects are destroyed. */
  readonly hwDestroyRwsem: RwSemaphore;
  closed = false;

  constructor(device: IbDevice) {
    this.id = device.objectId();
    this.device = device;
    this.hwDestroyRwsem = new RwSemaphore(
      `${device.name}/ufile${this.id}.hw_destroy_rwsem`,
      'hw_destroy_rwsem',
    );
  }

  toString(): string {
    return `${this.device.name}/ufile${this.id}`;
  }
}

/** ib_uverbs_open(): opens the device. */
export function ibUverbsOpen(device: IbDevice): UverbsFile {
  return new UverbsFile(device);
}

/**
 * ib_uverbs_get_context(): the file's ucontext, owned by the calling process. EINVAL when the
 * file already has one or is closed.
 */
export function ibUverbsGetContext(file: UverbsFile, caller: Process): IbUcontext {
  if (file.closed) throw new Errno('EBADF', `${file} is closed`);
  if (file.ucontext !== null) throw new Errno('EINVAL', `${file} already has a context`);
  if (caller.mm === null) throw new Errno('EINVAL', `${caller} has exited`);
  const device = file.device;
  const hook = device.ops.invalidateRange;
  const odp = new UcontextOdp2014(
    `${file}`,
    hook === undefined ? null : (u, s, e) => hook.call(device.ops, u, s, e),
  );
  const ctx = new IbUcontext(device, file, caller, odp);
  file.ucontext = ctx;
  device.ucontexts.add(ctx);
  return ctx;
}

/** ib_uverbs_close(): destroys what the file still owns, then the ucontext. EBADF when closed. */
export function* ibUverbsClose(file: UverbsFile): Co {
  if (file.closed) throw new Errno('EBADF', `${file} is already closed`);
  file.closed = true;
  yield* file.hwDestroyRwsem.downWrite();
  try {
    const ctx = file.ucontext;
    if (ctx === null) return;
    const ops = file.device.ops;
    for (const qp of [...ctx.qps]) {
      ctx.qps.delete(qp);
      qp.pd.usecnt--;
      yield* ops.destroyQp(qp);
    }
    for (const mr of [...ctx.mrs]) {
      ctx.mrs.delete(mr);
      mr.pd.usecnt--;
      yield* ops.deregMr(mr);
    }
    for (const cq of ctx.cqs) cq.dead = true;
    for (const pd of ctx.pds) pd.dead = true;
    ctx.cqs.clear();
    ctx.pds.clear();
    file.device.ucontexts.delete(ctx);
    file.ucontext = null;
  } finally {
    file.hwDestroyRwsem.upWrite();
  }
}
