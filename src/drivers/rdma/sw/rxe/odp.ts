/**
 * On-demand paging in the software RDMA device (drivers/infiniband/sw/rxe/rxe_odp.c, 6.14 and
 * later): rxe_ib_invalidate_range, rxe_odp_do_pagefault_and_lock, rxe_odp_init_pages,
 * rxe_odp_mr_init_user, rxe_check_pagefault, rxe_odp_map_range_and_lock, rxe_odp_mr_copy and
 * rxe_odp_atomic_op. The "device page table" is the umem's own slots, and the "device" is the
 * requester or responder work, which copies with the CPU while holding umem_mutex: an
 * invalidation cannot complete while it touches a page.
 */
import { charge } from '../../../../cost/charge.ts';
import { kernel } from '../../../../kernel/kernel.ts';
import type { Co } from '../../../../kernel/task.ts';
import { Errno } from '../../../../lib/errors.ts';
import { atomicResult, readU64, u64Bytes } from '../../../../lib/u64.ts';
import { PAGE_SIZE } from '../../../../mm/constants.ts';
import { mmuIntervalSetSeq } from '../../../../mm/mmu-interval-notifier.ts';
import type { MmuIntervalNotifierOps } from '../../../../mm/mmu-interval-notifier-types.ts';
import type { PageData } from '../../../../mm/page-data.ts';
import type { Process } from '../../../../mm/process.ts';
import { ibAccessWritable } from '../../core/ib-verbs.ts';
import type { IbPd } from '../../core/objects.ts';
import {
  ibUmemOdpGet,
  ibUmemOdpMapDmaAndLock,
  ibUmemOdpRelease,
  ibUmemOdpUnmapDmaPages,
  type UmemOdp,
} from '../../core/umem-odp.ts';
import { odpFaultEvent } from '../../events.ts';
import type { RxeDevice } from './main.ts';
import { mrCheckRange, RxeMr } from './mr.ts';

/** RXE_PAGEFAULT_RDONLY / _SNAPSHOT: a fault for reading only, or of present pages only. */
export interface RxePfFlags {
  readonly rdonly?: boolean;
  readonly snapshot?: boolean;
}

/** rxe_mn_ops: the interval notifier ops of every ODP umem of an rxe device. */
export function rxeMnOps(): MmuIntervalNotifierOps {
  return {
    client: 'rxe',
    invalidate: (mni, range, curSeq) => rxeIbInvalidateRange(mni.data as UmemOdp, range, curSeq),
  };
}

/**
 * rxe_ib_invalidate_range(): false for a non-blockable range; else, under umem_mutex, the
 * sequence is set and the slots of the range unmapped (nothing else caches them).
 */
function* rxeIbInvalidateRange(
  umem: UmemOdp,
  range: { readonly start: number; readonly end: number; readonly blockable: boolean },
  curSeq: number,
): Co<boolean> {
  if (!range.blockable) return false;
  yield* umem.umemMutex.lock();
  try {
    mmuIntervalSetSeq(umem.notifier!, curSeq);
    const lo = Math.max(umem.start, range.start);
    const hi = Math.min(umem.end, range.end);
    const mr = umem.privateMr as RxeMr | null;
    if (mr !== null) mr.tt.unmapRange(mr.mm, lo, hi);
    ibUmemOdpUnmapDmaPages(umem, lo, hi);
    return true;
  } finally {
    umem.umemMutex.unlock();
  }
}

/**
 * rxe_odp_do_pagefault_and_lock(): ib_umem_odp_map_dma_and_lock over [va, va + bcnt), for
 * write when the MR is writable and the fault is not read-only, faulting unless a snapshot.
 * Returns with umem_mutex held.
 */
export function* rxeOdpDoPagefaultAndLock(
  mr: RxeMr,
  va: number,
  bcnt: number,
  flags: RxePfFlags,
): Co<number> {
  const umem = mr.odp;
  const write = umem.writable && !flags.rdonly;
  if (!flags.snapshot) odpFaultEvent(mr.tt.name, mr.mm.id, va, bcnt, write, umem.writable);
  const npages = yield* ibUmemOdpMapDmaAndLock(
    umem,
    va,
    bcnt,
    { read: true, write },
    !flags.snapshot,
  );
  if (!flags.snapshot) charge('rxe.fault', npages);
  return npages;
}

/**
 * rxe_odp_mr_init_user(): the umem subscribes with rxe_mn_ops, `private` points at the MR, what
 * the CPU already maps is taken (a snapshot of the whole range), and the MR is valid.
 */
export function* rxeOdpMrInitUser(
  rxe: RxeDevice,
  index: number,
  pd: IbPd,
  start: number,
  length: number,
  access: number,
  caller: Process,
): Co<RxeMr> {
  const umem = yield* ibUmemOdpGet(
    pd.ucontext,
    caller,
    start,
    length,
    ibAccessWritable(access),
    rxeMnOps(),
  );
  const mr = new RxeMr(rxe, index, pd, access, start, length, umem, umem.owningMm);
  umem.privateMr = mr;
  try {
    yield* rxeOdpDoPagefaultAndLock(mr, umem.address, umem.length, { snapshot: true });
  } catch (e) {
    umem.privateMr = null;
    yield* ibUmemOdpRelease(umem);
    throw e;
  }
  umem.umemMutex.unlock();
  mr.valid = true;
  return mr;
}

/** rxe_check_pagefault(): some page of [iova, iova + length) lacks a mapping with `write` if asked. */
function rxeCheckPagefault(umem: UmemOdp, iova: number, length: number, write: boolean): boolean {
  for (let addr = iova - (iova % PAGE_SIZE); addr < iova + length; addr += PAGE_SIZE) {
    const slot = umem.slots.get((addr - umem.start) / PAGE_SIZE);
    if (slot === undefined || (write && !slot.write)) return true;
  }
  return false;
}

/**
 * rxe_odp_map_range_and_lock(): under umem_mutex, the pages of [iova, iova + length) are
 * checked; if one is missing (or read-only for a write) the mutex is dropped, the range
 * faulted in (returning with the mutex held) and checked again. Returns with the mutex held;
 * EFAULT if still missing, EINVAL for an empty range, the fault's errors (unlocked).
 */
export function* rxeOdpMapRangeAndLock(
  mr: RxeMr,
  iova: number,
  length: number,
  flags: RxePfFlags,
): Co {
  if (length < 1) throw new Errno('EINVAL', `${mr.tt.name}: empty access`);
  const umem = mr.odp;
  const write = !flags.rdonly;
  const keepsLock = kernel().mutant('rxe.recheck-keeps-lock');
  yield* umem.umemMutex.lock();
  if (!rxeCheckPagefault(umem, iova, length, write)) return;
  umem.umemMutex.unlock();
  yield* rxeOdpDoPagefaultAndLock(mr, iova, length, flags);
  if (rxeCheckPagefault(umem, iova, length, write)) {
    // Mutant O5: the error return keeps umem_mutex, so the next invalidation of the MR blocks
    // for good, and the munmap or exit behind it (6.14, fixed by 3c68cf68233e in 2025).
    if (!keepsLock) umem.umemMutex.unlock();
    throw new Errno('EFAULT', `${mr.tt.name}: a page is still missing after the fault`);
  }
}

/** The frame behind a mapped page of the umem, reported to the oracles as the device's access. */
function pageData(mr: RxeMr, addr: number, write: boolean): PageData {
  const umem = mr.odp;
  const slot = umem.slots.get((addr - umem.start) / PAGE_SIZE)!;
  mr.tt.map(mr.mm, addr, {
    pfn: slot.page.pfn,
    gen: slot.gen,
    writable: slot.write && mr.tt.regionWritable,
  });
  mr.tt.access(mr.mm, addr, write);
  return slot.page.data;
}

/**
 * rxe_odp_mr_copy(): into the MR (`toMr`) or out of it (a read-only fault), the pages mapped and
 * copied with umem_mutex held throughout. EFAULT when the pages cannot be had.
 */
export function* rxeOdpMrCopy(mr: RxeMr, iova: number, buf: Uint8Array, toMr: boolean): Co {
  if (buf.length === 0) return;
  yield* rxeOdpMapRangeAndLock(mr, iova, buf.length, { rdonly: !toMr });
  const umem = mr.odp;
  try {
    for (let done = 0; done < buf.length; ) {
      const addr = iova + done;
      const within = addr % PAGE_SIZE;
      const len = Math.min(buf.length - done, PAGE_SIZE - within);
      const data = pageData(mr, addr - within, toMr);
      if (toMr) data.write(within, buf, done, len);
      else data.read(within, buf, done, len);
      done += len;
    }
  } finally {
    umem.umemMutex.unlock();
  }
}

/** What an atomic returns: the original value, or the responder's error state. */
export type RxeAtomicResult =
  | { readonly value: bigint }
  | { readonly error: 'RKEY_VIOLATION' | 'MISALIGNED' };

/**
 * rxe_odp_atomic_op(): fetch-and-add or compare-and-swap of the 8 bytes at `iova`, the page
 * faulted in for write and the operation done under umem_mutex and the device's atomic lock.
 * RKEY_VIOLATION for a page that cannot be had, an invalid MR or a range outside it;
 * MISALIGNED unless 8-byte aligned.
 */
export function* rxeOdpAtomicOp(
  mr: RxeMr,
  iova: number,
  fetchAdd: boolean,
  compareAdd: bigint,
  swap: bigint,
): Co<RxeAtomicResult> {
  try {
    yield* rxeOdpMapRangeAndLock(mr, iova, 1, {});
  } catch (e) {
    if (e instanceof Errno) return { error: 'RKEY_VIOLATION' };
    throw e;
  }
  const umem = mr.odp;
  try {
    if (!mr.valid || !mrCheckRange(mr, iova, 8)) return { error: 'RKEY_VIOLATION' };
    if (iova % 8 !== 0) return { error: 'MISALIGNED' };
    const data = pageData(mr, iova - (iova % PAGE_SIZE), true);
    yield* mr.rxe.atomicOpsLock.lock();
    const word = new Uint8Array(8);
    data.read(iova % PAGE_SIZE, word, 0, 8);
    const old = readU64(word);
    data.write(iova % PAGE_SIZE, u64Bytes(atomicResult(fetchAdd, old, compareAdd, swap)), 0, 8);
    mr.rxe.atomicOpsLock.unlock();
    return { value: old };
  } finally {
    umem.umemMutex.unlock();
  }
}
