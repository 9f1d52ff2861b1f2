/**
 * dmirror_snapshot(): reads the CPU page-table state of a range without faulting, one byte
 * per page, in 32-page chunks each watched by a temporary interval notifier.
 */

import { spend } from '../../cost/charge.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { Co } from '../../kernel/task.ts';
import { Errno, isErrno } from '../../lib/errors.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import { mmput } from '../../mm/exit.ts';
import {
  HMM_PFN_ERROR,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  HMM_RANGE_DEFAULT_TIMEOUT_NS,
  hmmPfnFlags,
  hmmPfnMapOrder,
  hmmPfnToPfn,
  hmmRange,
  hmmRangeFault,
} from '../../mm/hmm.ts';
import { mmgetNotZero } from '../../mm/mm-refs.ts';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
} from '../../mm/mmu-interval-notifier.ts';
import { MmuIntervalNotifier } from '../../mm/mmu-interval-notifier-types.ts';
import type { Page } from '../../mm/page.ts';
import { PFN_SPAN } from '../../mm/phys-mem.ts';
import type { Dmirror } from './dmirror.ts';
import { FAULT_CHUNK_PAGES } from './fault.ts';
import {
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE,
  HMM_DMIRROR_PROT_ERROR,
  HMM_DMIRROR_PROT_NONE,
  HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_READ,
  HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_PROT_ZERO,
  type HmmDmirrorCmd,
} from './uapi.ts';

/**
 * dmirror_mkentry(): the SNAPSHOT byte of one output pfn. `pageOf` finds the page of a pfn
 * (device-private pages are this device's, `owner`, or another's).
 */
export function snapshotByte(
  entry: number,
  pageOf: (pfn: number) => Page | undefined = () => undefined,
  owner: unknown = null,
): number {
  const flags = hmmPfnFlags(entry);
  if (flags & HMM_PFN_ERROR) return HMM_DMIRROR_PROT_ERROR;
  if (!(flags & HMM_PFN_VALID)) return HMM_DMIRROR_PROT_NONE;
  const pfn = hmmPfnToPfn(entry);
  const pgmap = pageOf(pfn)?.pgmap ?? null;
  let b = HMM_DMIRROR_PROT_NONE;
  if (pgmap !== null)
    b =
      pgmap.owner === owner
        ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL
        : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
  else if (pfn % PFN_SPAN === 0) b = HMM_DMIRROR_PROT_ZERO;
  b |= flags & HMM_PFN_WRITE ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
  if (hmmPfnMapOrder(entry) === 9) b |= HMM_DMIRROR_PROT_PMD;
  return b;
}

/** One chunk: insert the temporary notifier, snapshot under the retry protocol, remove it. */
function* snapshotChunk(
  d: Dmirror,
  start: number,
  end: number,
  out: Uint8Array,
  offset: number,
): Co {
  const k = kernel();
  const mutex = d.mutex;
  const tmp = new MmuIntervalNotifier({
    client: 'dmirror',
    *invalidate(sub, range, cur) {
      if (range.blockable) yield* mutex.lock();
      else if (!mutex.tryLock()) return false;
      mmuIntervalSetSeq(sub, cur);
      mutex.unlock();
      return true;
    },
  });
  yield* mmuIntervalNotifierInsert(tmp, d.mm, start, end - start, tmp.ops);
  try {
    const timeout = k.now + HMM_RANGE_DEFAULT_TIMEOUT_NS;
    for (let pass = 0; ; pass++) {
      if (pass > 0) yield* spend('hmm.retry');
      if (k.now > timeout)
        throw new Errno('EBUSY', `${d.pt.name}: snapshot of [${start}, ${end}) timed out`);
      const seq = yield* mmuIntervalReadBegin(tmp);
      const range = hmmRange(
        tmp,
        seq,
        start,
        end,
        { fault: false, write: false },
        undefined,
        d.device,
      );
      yield* d.mm.mmapLock.downRead();
      try {
        yield* hmmRangeFault(d.mm, range);
      } catch (e) {
        if (isErrno(e, 'EBUSY')) continue;
        throw e;
      } finally {
        d.mm.mmapLock.upRead();
      }
      yield* mutex.lock();
      if (mmuIntervalReadRetry(tmp, seq)) {
        mutex.unlock();
        continue;
      }
      const phys = d.mm.machine.phys;
      const pageOf = (pfn: number) => phys.page(pfn);
      for (let i = 0; i < range.pfns.length; i++)
        out[offset + i] = snapshotByte(range.pfns[i]!, pageOf, d.device);
      mutex.unlock();
      return;
    }
  } finally {
    yield* mmuIntervalNotifierRemove(tmp);
  }
}

/** dmirror_snapshot(): cpages counts the pages encoded. */
export function* dmirrorSnapshot(d: Dmirror, cmd: HmmDmirrorCmd): Co {
  if (cmd.ptr.length < cmd.npages)
    throw new Errno(
      'EFAULT',
      `user buffer of ${cmd.ptr.length} bytes is smaller than ${cmd.npages} entries`,
    );
  if (!mmgetNotZero(d.mm)) throw new Errno('EINVAL', `${d.pt.name}: the mirrored process is gone`);
  try {
    const end = cmd.addr + cmd.npages * PAGE_SIZE;
    for (let addr = cmd.addr; addr < end; addr += FAULT_CHUNK_PAGES * PAGE_SIZE) {
      const next = Math.min(end, addr + FAULT_CHUNK_PAGES * PAGE_SIZE);
      yield* snapshotChunk(d, addr, next, cmd.ptr, (addr - cmd.addr) / PAGE_SIZE);
      cmd.cpages += (next - addr) / PAGE_SIZE;
    }
  } finally {
    yield* mmput(d.mm);
  }
}
