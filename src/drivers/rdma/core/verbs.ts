/**
 * The verbs a process calls (libibverbs over uverbs, drivers/infiniband/core/uverbs_cmd.c and
 * verbs.c): query the device, allocate PDs and CQs, create, modify and destroy RC QPs,
 * register and deregister MRs, post work requests and poll completions. Each validates its
 * arguments as the kernel and rdma-core do and fails with the errno they return.
 */
import { current } from '../../../kernel/kernel.ts';
import type { Co } from '../../../kernel/task.ts';
import { Errno } from '../../../lib/errors.ts';
import { MAP_SHARED } from '../../../mm/constants.ts';
import { mmap } from '../../../mm/mmap.ts';
import { Process } from '../../../mm/process.ts';
import type { IbDevice } from './device.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_ATOMIC,
  IB_ACCESS_REMOTE_WRITE,
  IB_ACCESS_SUPPORTED,
  IB_ODP_SUPPORT,
  IB_UVERBS_ADVISE_MR_FLAG_FLUSH,
  type IbOdpCaps,
  type IbWrOpcode,
  QP_TRANSITIONS,
} from './ib-verbs.ts';
import {
  IbCq,
  type IbDm,
  type IbMr,
  IbPd,
  IbQp,
  type IbQpAttr,
  type IbQpInitAttr,
  type IbRecvWr,
  type IbSendWr,
  type IbSge,
  type IbUcontext,
  type IbWc,
} from './objects.ts';
import type { UverbsFile } from './uverbs.ts';

const OPCODES: readonly IbWrOpcode[] = [
  'SEND',
  'RDMA_WRITE',
  'RDMA_READ',
  'ATOMIC_CMP_AND_SWP',
  'ATOMIC_FETCH_AND_ADD',
];

/** ibv_query_device_ex(): the ODP capabilities. */
export function ibQueryDeviceEx(device: IbDevice): { readonly odpCaps: IbOdpCaps } {
  return { odpCaps: device.odpCaps };
}

/**
 * The uverbs command path around a command that creates (`create`) or destroys objects: inside
 * disassociate_srcu, with hw_destroy_rwsem held for read so that the destruction of the whole
 * file (which holds it for write) waits for the command or runs before it. A creation only
 * tries the rwsem (rdma_alloc_begin_uobject: EIO while the file is being destroyed); a
 * destruction waits for it (uobj_destroy). Either finds the context gone afterwards: EIO.
 */
function* uverbsCommand<T>(ctx: IbUcontext, create: boolean, body: () => Co<T>): Co<T> {
  live(ctx);
  const udev = ctx.device.uverbs;
  const ufile = ctx.ufile;
  const srcu = udev.disassociateSrcu.readLock();
  try {
    if (create) {
      if (!ufile.hwDestroyRwsem.downReadTrylock())
        throw new Errno('EIO', `${ufile} is being destroyed`);
    } else yield* ufile.hwDestroyRwsem.downRead();
    try {
      live(ctx);
      return yield* body();
    } finally {
      ufile.hwDestroyRwsem.upRead();
    }
  } finally {
    udev.disassociateSrcu.readUnlock(srcu);
  }
}

function live(ctx: IbUcontext): void {
  const udev = ctx.device.uverbs;
  if (udev.ibDev === null || udev.apiDisassociated)
    throw new Errno('EIO', `${ctx.device.name} was disassociated (unplugged)`);
  if (ctx.ufile.closed || ctx.ufile.ucontext !== ctx)
    throw new Errno('EBADF', `the verbs file of ${ctx.device.name} is closed`);
}

function checkInt(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw new Errno('EINVAL', `${what} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return v;
}

/** ibv_alloc_pd(). */
export function ibAllocPd(ctx: IbUcontext): IbPd {
  live(ctx);
  const pd = new IbPd(ctx.device.objectId(), ctx);
  ctx.pds.add(pd);
  return pd;
}

/** ibv_dealloc_pd(): EBUSY while QPs or MRs use it. */
export function ibDeallocPd(pd: IbPd): void {
  live(pd.ucontext);
  if (pd.dead) throw new Errno('EINVAL', `pd${pd.id} was already deallocated`);
  if (pd.usecnt > 0) throw new Errno('EBUSY', `pd${pd.id} is used by ${pd.usecnt} QPs or MRs`);
  pd.dead = true;
  pd.ucontext.pds.delete(pd);
}

/** ibv_create_cq() with `cqe` entries (1 to 2^22). */
export function ibCreateCq(ctx: IbUcontext, cqe: number): IbCq {
  live(ctx);
  checkInt(cqe, 'cqe', 1, 1 << 22);
  const cq = new IbCq(ctx.device.objectId(), ctx, cqe);
  ctx.cqs.add(cq);
  return cq;
}

/** ibv_destroy_cq(): EBUSY while QPs use it. */
export function ibDestroyCq(cq: IbCq): void {
  live(cq.ucontext);
  if (cq.dead) throw new Errno('EINVAL', `cq${cq.id} was already destroyed`);
  if (cq.usecnt > 0) throw new Errno('EBUSY', `cq${cq.id} is used by ${cq.usecnt} QPs`);
  cq.dead = true;
  cq.ucontext.cqs.delete(cq);
}

/** ibv_create_qp() (RC): the QP starts in RESET. */
export function* ibCreateQp(pd: IbPd, attr: IbQpInitAttr): Co<IbQp> {
  const ctx = pd.ucontext;
  live(ctx);
  if (pd.dead) throw new Errno('EINVAL', `pd${pd.id} was deallocated`);
  for (const cq of [attr.sendCq, attr.recvCq]) {
    if (!(cq instanceof IbCq) || cq.dead || cq.ucontext !== ctx)
      throw new Errno('EINVAL', 'create_qp: a CQ of this context is required');
  }
  checkInt(attr.maxSendWr ?? 128, 'max_send_wr', 1, 1 << 15);
  checkInt(attr.maxRecvWr ?? 128, 'max_recv_wr', 1, 1 << 15);
  checkInt(attr.maxSge ?? 4, 'max_sge', 1, 30);
  return yield* uverbsCommand(ctx, true, function* () {
    const qp = yield* ctx.device.ops.createQp(pd, attr);
    pd.usecnt++;
    attr.sendCq.usecnt++;
    attr.recvCq.usecnt++;
    ctx.qps.add(qp);
    return qp;
  });
}

/**
 * ibv_modify_qp(): RESET→INIT→RTR (connecting to `dest`)→RTS, any state →ERR or →RESET.
 * EINVAL for another transition, a missing peer at RTR, or a timer or counter out of range.
 */
export function* ibModifyQp(qp: IbQp, attr: IbQpAttr): Co {
  live(qp.pd.ucontext);
  if (qp.destroyed) throw new Errno('EINVAL', `qp${qp.qpn} was destroyed`);
  const next = attr.state;
  if (!(next in QP_TRANSITIONS) || !QP_TRANSITIONS[qp.state].includes(next))
    throw new Errno('EINVAL', `qp${qp.qpn}: no transition from ${qp.state} to ${String(next)}`);
  if (next === 'RTR' && qp.state === 'INIT') {
    if (!(attr.dest instanceof IbQp) || attr.dest.destroyed)
      throw new Errno('EINVAL', `qp${qp.qpn}: RTR needs the connected peer QP (dest)`);
  } else if (attr.dest !== undefined) {
    throw new Errno('EINVAL', `qp${qp.qpn}: the peer is set at RTR only`);
  }
  if (attr.minRnrTimer !== undefined) checkInt(attr.minRnrTimer, 'min_rnr_timer', 0, 31);
  if (attr.timeout !== undefined) checkInt(attr.timeout, 'timeout', 0, 31);
  if (attr.retryCnt !== undefined) checkInt(attr.retryCnt, 'retry_cnt', 0, 7);
  if (attr.rnrRetry !== undefined) checkInt(attr.rnrRetry, 'rnr_retry', 0, 7);
  yield* qp.device.ops.modifyQp(qp, attr);
}

/** ibv_destroy_qp(). */
export function* ibDestroyQp(qp: IbQp): Co {
  const ctx = qp.pd.ucontext;
  yield* uverbsCommand(ctx, false, function* () {
    if (qp.destroyed || !ctx.qps.has(qp))
      throw new Errno('EINVAL', `qp${qp.qpn} was already destroyed`);
    ctx.qps.delete(qp);
    yield* qp.device.ops.destroyQp(qp);
    qp.pd.usecnt--;
    qp.sendCq.usecnt--;
    qp.recvCq.usecnt--;
  });
}

/**
 * ibv_reg_mr() by process `caller`: [addr, addr + length) with IB_ACCESS_* `access`. EINVAL for
 * unknown flags, REMOTE_WRITE or REMOTE_ATOMIC without LOCAL_WRITE (ib_check_mr_access), an
 * empty or overflowing range; EOPNOTSUPP for ON_DEMAND on a device without ODP; then the
 * umem's errors (ENOMEM past RLIMIT_MEMLOCK or out of memory, EFAULT for unmapped pages of a
 * pinned MR, EINVAL for an ODP MR from a process other than the context's creator).
 */
export function* ibRegMr(
  caller: Process,
  pd: IbPd,
  addr: number,
  length: number,
  access: number,
): Co<IbMr> {
  if (!(caller instanceof Process))
    throw new Errno('EINVAL', 'reg_mr: the caller must be a Process');
  const ctx = pd.ucontext;
  live(ctx);
  if (pd.dead) throw new Errno('EINVAL', `pd${pd.id} was deallocated`);
  checkInt(access, 'access flags', 0, 0xffff);
  if ((access & ~IB_ACCESS_SUPPORTED) !== 0)
    throw new Errno(
      'EINVAL',
      `reg_mr: unsupported access flags 0x${(access & ~IB_ACCESS_SUPPORTED).toString(16)}`,
    );
  if (
    access & (IB_ACCESS_REMOTE_WRITE | IB_ACCESS_REMOTE_ATOMIC) &&
    !(access & IB_ACCESS_LOCAL_WRITE)
  )
    throw new Errno('EINVAL', 'reg_mr: REMOTE_WRITE and REMOTE_ATOMIC need LOCAL_WRITE');
  if (access & IB_ACCESS_ON_DEMAND && !(ctx.device.odpCaps.generalCaps & IB_ODP_SUPPORT))
    throw new Errno('EOPNOTSUPP', `reg_mr: ${ctx.device.name} has no on-demand paging`);
  checkInt(addr, 'reg_mr address', 0, Number.MAX_SAFE_INTEGER);
  checkInt(length, 'reg_mr length', 1, Number.MAX_SAFE_INTEGER - addr);
  return yield* uverbsCommand(ctx, true, function* () {
    const mr = yield* ctx.device.ops.regUserMr(pd, addr, length, access, caller);
    pd.usecnt++;
    ctx.mrs.add(mr);
    return mr;
  });
}

/** ibv_dereg_mr(): the device no longer uses the MR when it returns. */
export function* ibDeregMr(mr: IbMr): Co {
  const ctx = mr.pd.ucontext;
  yield* uverbsCommand(ctx, false, function* () {
    if (!ctx.mrs.has(mr))
      throw new Errno('EINVAL', `MR 0x${mr.lkey.toString(16)} is not registered`);
    ctx.mrs.delete(mr);
    yield* ctx.device.ops.deregMr(mr);
    mr.pd.usecnt--;
  });
}

function checkSgList(list: unknown, max: number): readonly IbSge[] {
  if (!Array.isArray(list)) throw new Errno('EINVAL', 'sg_list must be an array');
  if (list.length > max) throw new Errno('EINVAL', `${list.length} SGEs exceed max_sge ${max}`);
  for (const s of list as IbSge[]) {
    checkInt(s?.addr, 'sge addr', 0, Number.MAX_SAFE_INTEGER);
    checkInt(s.length, 'sge length', 0, 2 ** 31);
    checkInt(s.lkey, 'sge lkey', 0, 0xffff_ffff);
  }
  return list as IbSge[];
}

/** Scatter/gather elements an ibv_advise_mr() call may name (the model's bound). */
const ADVISE_MR_MAX_SGE = 1024;

/**
 * ibv_advise_mr(): asks the device to make ODP pages visible now: PREFETCH, PREFETCH_WRITE or
 * PREFETCH_NO_FAULT over each element's lkey range; with IB_UVERBS_ADVISE_MR_FLAG_FLUSH it
 * returns once they are, else it is best effort. EINVAL for unknown flags or an empty or
 * malformed list; EOPNOTSUPP on a device without it; then the driver's errors (ENOENT for a key
 * that is no prefetchable MR of the PD, EFAULT for a range outside it).
 */
export function* ibAdviseMr(pd: IbPd, advice: number, flags: number, sgList: readonly IbSge[]): Co {
  const ctx = pd.ucontext;
  live(ctx);
  if (pd.dead) throw new Errno('EINVAL', `pd${pd.id} was deallocated`);
  checkInt(advice, 'advice', 0, 0xffff_ffff);
  checkInt(flags, 'advise_mr flags', 0, 0xffff_ffff);
  if (flags & ~IB_UVERBS_ADVISE_MR_FLAG_FLUSH)
    throw new Errno('EINVAL', `advise_mr: unknown flags 0x${flags.toString(16)}`);
  const list = checkSgList(sgList, ADVISE_MR_MAX_SGE);
  if (list.length === 0) throw new Errno('EINVAL', 'advise_mr: empty scatter/gather list');
  const advise = ctx.device.ops.adviseMr;
  if (advise === undefined)
    throw new Errno('EOPNOTSUPP', `${ctx.device.name} does not support ibv_advise_mr`);
  yield* uverbsCommand(ctx, false, () => advise.call(ctx.device.ops, pd, advice, flags, list));
}

/**
 * ibv_alloc_dm(): `pages` of device memory, mapped with {@link ibMmap} at the returned object's
 * offset. EOPNOTSUPP on a device without device memory.
 */
export function* ibAllocDm(ctx: IbUcontext, pages: number): Co<IbDm> {
  const alloc = ctx.device.ops.allocDm;
  if (alloc === undefined) throw new Errno('EOPNOTSUPP', `${ctx.device.name} has no device memory`);
  return yield* uverbsCommand(ctx, true, function* () {
    const dm = yield* alloc.call(ctx.device.ops, ctx, pages);
    ctx.dms.add(dm);
    return dm;
  });
}

/** ibv_free_dm(): existing mappings keep the memory until they go; no new one can be made. */
export function* ibFreeDm(dm: IbDm): Co {
  const ctx = dm.ucontext;
  yield* uverbsCommand(ctx, false, function* () {
    if (!ctx.dms.has(dm)) throw new Errno('EINVAL', 'device memory already freed');
    ctx.dms.delete(dm);
    yield* ctx.device.ops.deallocDm!(dm);
  });
}

/**
 * mmap(2) of the verbs file at `offset` by `proc`: device memory (the doorbell page, a
 * device-memory allocation) mapped shared into its address space. Returns the address.
 */
export function* ibMmap(
  proc: Process,
  file: UverbsFile,
  offset: number,
  len: number,
  prot: number,
  flags = MAP_SHARED,
): Co<number> {
  const mm = proc.mm;
  if (mm === null) throw new Errno('EINVAL', `mmap by ${proc}, which has exited`);
  if (file.closed) throw new Errno('EBADF', `${file} is closed`);
  return yield* mmap(mm, { len, prot, flags, file: file.filp, offset });
}

/** ibv_post_send(): EINVAL for a malformed WR or a QP that cannot send; ENOMEM when full. */
export function ibPostSend(qp: IbQp, wr: IbSendWr): void {
  if (qp.destroyed) throw new Errno('EINVAL', `qp${qp.qpn} was destroyed`);
  if (!OPCODES.includes(wr?.opcode))
    throw new Errno('EINVAL', `unknown opcode ${String(wr?.opcode)}`);
  checkInt(wr.wrId, 'wr_id', 0, Number.MAX_SAFE_INTEGER);
  checkSgList(wr.sgList, qp.maxSge);
  if (wr.opcode !== 'SEND') {
    checkInt(wr.remoteAddr, 'remote_addr', 0, Number.MAX_SAFE_INTEGER);
    checkInt(wr.rkey, 'rkey', 0, 0xffff_ffff);
  }
  if (wr.opcode.startsWith('ATOMIC')) {
    checkInt(wr.compareAdd, 'compare_add', 0, Number.MAX_SAFE_INTEGER);
    if (wr.opcode === 'ATOMIC_CMP_AND_SWP') checkInt(wr.swap, 'swap', 0, Number.MAX_SAFE_INTEGER);
  }
  qp.device.ops.postSend(qp, wr);
}

/** ibv_post_recv(). */
export function ibPostRecv(qp: IbQp, wr: IbRecvWr): void {
  if (qp.destroyed) throw new Errno('EINVAL', `qp${qp.qpn} was destroyed`);
  checkInt(wr?.wrId, 'wr_id', 0, Number.MAX_SAFE_INTEGER);
  checkSgList(wr.sgList, qp.maxSge);
  qp.device.ops.postRecv(qp, wr);
}

/** ibv_poll_cq(): up to `n` completions (never sleeps). */
export function ibPollCq(cq: IbCq, n: number): IbWc[] {
  checkInt(n, 'poll count', 1, Number.MAX_SAFE_INTEGER);
  return cq.poll(n);
}

/**
 * Waits for completions (ibv_req_notify_cq + ibv_get_cq_event, then polling): sleeps until the
 * CQ holds at least one, returns up to `n`.
 */
export function* ibWaitCq(cq: IbCq, n = 1): Co<IbWc[]> {
  current();
  yield* cq.wq.waitEvent(() => cq.entries.length > 0 || cq.overflowed);
  return ibPollCq(cq, n);
}
