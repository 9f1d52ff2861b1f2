/**
 * The dmirror fault path (dmirror_fault / dmirror_range_fault / dmirror_do_fault): 32-page
 * chunks, each with its own read_begin → hmm_range_fault → mutex → read_retry loop and a
 * 1000 ms (virtual) EBUSY timeout, committing the pfns to the device table under the mutex.
 */

import { spend } from '../../cost/charge.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { Co } from '../../kernel/task.ts';
import { Errno, isErrno } from '../../lib/errors.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import { mmput } from '../../mm/exit.ts';
import {
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  type HmmRange,
  hmmPfnFlags,
  hmmPfnToPfn,
  hmmRange,
  hmmRangeFault,
  HMM_RANGE_DEFAULT_TIMEOUT_NS as RANGE_TIMEOUT_NS,
} from '../../mm/hmm.ts';
import { mmgetNotZero } from '../../mm/mm-refs.ts';
import { mmuIntervalReadBegin, mmuIntervalReadRetry } from '../../mm/mmu-interval-notifier.ts';
import type { Dmirror } from './dmirror.ts';

/** Pages per hmm_range in dmirror_fault(). */
export const FAULT_CHUNK_PAGES = 32;
/**
 * dmirror_fault(): faults [start, end) in 32-page chunks. An mm that is gone is EINVAL, as in
 * dmirror_snapshot(): Linux's dmirror_fault() returns 0 there, and dmirror_read() and
 * dmirror_write() then spin for ever (the walk finds no entry, the fault adds none).
 */
export function* dmirrorFault(d: Dmirror, start: number, end: number, write: boolean): Co {
  if (!mmgetNotZero(d.mm)) throw new Errno('EINVAL', `${d.pt.name}: the mirrored process is gone`);
  const k = kernel();
  if (k.trace.on) k.trace.emit('dev-fault', { dev: d.pt.name, mm: d.mm.id, start, end, write });
  try {
    for (let addr = start; addr < end; addr += FAULT_CHUNK_PAGES * PAGE_SIZE) {
      const next = Math.min(end, addr + FAULT_CHUNK_PAGES * PAGE_SIZE);
      yield* rangeFault(d, addr, next, write);
    }
  } finally {
    yield* mmput(d.mm);
  }
}

/** dmirror_range_fault(): one chunk, retried until it commits or fails. */
function* rangeFault(d: Dmirror, start: number, end: number, write: boolean): Co {
  const k = kernel();
  const timeout = k.now + RANGE_TIMEOUT_NS;
  for (let pass = 0; ; pass++) {
    if (pass > 0) yield* spend('hmm.retry');
    if (k.now > timeout)
      throw new Errno('EBUSY', `${d.pt.name}: fault of [${start}, ${end}) timed out`);
    const own = yield* d.ownMigrationBegin(start, end);
    const seq = yield* mmuIntervalReadBegin(d.notifier);
    const range = hmmRange(
      d.notifier,
      seq,
      start,
      end,
      { fault: true, write },
      undefined,
      d.device,
    );
    yield* d.mm.mmapLock.downRead();
    try {
      yield* hmmRangeFault(d.mm, range);
    } catch (e) {
      if (!isErrno(e, 'EBUSY')) throw e;
      if (k.trace.on)
        k.trace.emit('dev-retry', { dev: d.pt.name, mm: d.mm.id, start, reason: 'EBUSY' });
      continue;
    } finally {
      d.mm.mmapLock.upRead();
    }
    yield* d.mutex.lock();
    // Mutant: commit without asking whether an invalidation hit the range meanwhile.
    const ownRaced = d.ownMigrationRaced(own);
    if (!k.mutant('dmirror.no-read-retry') && (mmuIntervalReadRetry(d.notifier, seq) || ownRaced)) {
      d.mutex.unlock();
      const reason = ownRaced ? 'own migration' : 'read_retry';
      if (k.trace.on) k.trace.emit('dev-retry', { dev: d.pt.name, mm: d.mm.id, start, reason });
      continue;
    }
    try {
      doFault(d, range, write);
    } finally {
      d.mutex.unlock();
    }
    return;
  }
}

/** dmirror_do_fault(): stores each page, WRITE-tagged when the pfn is writable (mutex held). */
function doFault(d: Dmirror, range: HmmRange, write: boolean): void {
  for (let i = 0; i < range.pfns.length; i++) {
    const entry = range.pfns[i]!;
    const flags = hmmPfnFlags(entry);
    if (!(flags & HMM_PFN_VALID)) continue;
    const writable = (flags & HMM_PFN_WRITE) !== 0;
    if (write && !writable)
      throw new Errno('EFAULT', `${d.pt.name}: write fault got a read-only page`);
    d.pt.map(d.mm, range.start + i * PAGE_SIZE, {
      pfn: hmmPfnToPfn(entry),
      gen: range.gens[i]!,
      writable,
    });
  }
}
