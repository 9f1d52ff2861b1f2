/**
 * CPU loads and stores by scenario threads: each page touched is one step. The CPU's TLB is
 * looked up first (a hit uses the cached translation, however stale, as hardware does); a
 * miss walks the page table and caches what it found; a missing or insufficient entry takes
 * a page fault (mmap_lock for read, handle_mm_fault) and retries, as the MMU and the fault
 * handler do.
 */

import { kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { hex, PAGE_SIZE, TASK_SIZE } from './constants.ts';
import { handleMmFault, segv } from './fault.ts';
import type { Mm } from './mm.ts';
import type { PageData } from './page-data.ts';
import { frameData, pageWalk } from './page-walk.ts';
import { pteGen, ptePfn } from './pte.ts';
import { cpuTlb } from './tlb.ts';

/** MAX_RW_COUNT (INT_MAX & PAGE_MASK): the most bytes one read returns; cpuRead() refuses more. */
export const MAX_RW_COUNT = 2 ** 31 - PAGE_SIZE;

function checkRange(mm: Mm, addr: number, len: number): void {
  if (!Number.isSafeInteger(addr) || addr < 0)
    throw new Errno('EFAULT', `bad user address ${String(addr)}`);
  if (!Number.isSafeInteger(len) || len < 0)
    throw new Errno('EINVAL', `bad access length ${String(len)}`);
  if (addr + len > TASK_SIZE)
    throw new Errno('EFAULT', `access [${hex(addr)}, +${len}) goes past TASK_SIZE`);
  if (mm.exited) throw new Errno('EFAULT', `mm${mm.id} has exited`);
}

/** What an access reaches: the bytes of a frame and which frame (for the trace). */
interface Reached {
  readonly data: PageData;
  readonly pfn: number;
  readonly gen: number;
}

/**
 * Resolves the page of `addr` to a usable translation: the TLB's, or a walk's (which sets the
 * entry's accessed and dirty bits and fills the TLB), faulting as needed.
 */
function* translate(mm: Mm, addr: number, write: boolean): Co<Reached> {
  const page = addr - (addr % PAGE_SIZE);
  const tlb = cpuTlb(mm);
  for (let tries = 0; tries < 100; tries++) {
    yield;
    const hit = tlb?.lookup(page);
    if (hit !== undefined && (!write || hit.writable)) return hit;
    const pte = pageWalk(mm, page, write);
    if (pte !== undefined) {
      const data = frameData(mm, pte);
      return tlb?.fill(page, pte, data, write) ?? { data, pfn: ptePfn(pte), gen: pteGen(pte) };
    }
    yield* mm.mmapLock.downRead();
    try {
      yield* handleMmFault(mm, addr, write);
    } finally {
      mm.mmapLock.upRead();
    }
  }
  throw segv(addr, 'fault did not resolve after 100 tries');
}

function touched(mm: Mm, addr: number, at: Reached, write: boolean): void {
  const k = kernel();
  if (k.trace.on) k.trace.emit('cpu-access', { mm: mm.id, addr, pfn: at.pfn, gen: at.gen, write });
}

/** Reads `len` bytes at user address `addr` (copy_from_user-like, but faulting as a CPU). */
export function* cpuRead(mm: Mm, addr: number, len: number): Co<Uint8Array> {
  checkRange(mm, addr, len);
  if (len > MAX_RW_COUNT)
    throw new Errno('EINVAL', `cpuRead: length ${len} is more than MAX_RW_COUNT (${MAX_RW_COUNT})`);
  const out = new Uint8Array(len);
  for (let done = 0; done < len; ) {
    const a = addr + done;
    const within = a % PAGE_SIZE;
    const n = Math.min(len - done, PAGE_SIZE - within);
    const at = yield* translate(mm, a, false);
    at.data.read(within, out, done, n);
    touched(mm, a - within, at, false);
    done += n;
  }
  return out;
}

/** Writes `data` at user address `addr`. */
export function* cpuWrite(mm: Mm, addr: number, data: Uint8Array): Co {
  checkRange(mm, addr, data.length);
  for (let done = 0; done < data.length; ) {
    const a = addr + done;
    const within = a % PAGE_SIZE;
    const n = Math.min(data.length - done, PAGE_SIZE - within);
    const at = yield* translate(mm, a, true);
    at.data.write(within, data, done, n);
    touched(mm, a - within, at, true);
    done += n;
  }
}

/** Reads a little-endian 32-bit integer (signed) at `addr`. */
export function* cpuReadU32(mm: Mm, addr: number): Co<number> {
  const b = yield* cpuRead(mm, addr, 4);
  return b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24);
}

/** Writes a little-endian 32-bit integer at `addr`. */
export function* cpuWriteU32(mm: Mm, addr: number, value: number): Co {
  // Bytes set one by one: a DataView over a 4-byte array makes V8 move it off-heap.
  const b = new Uint8Array(4);
  b[0] = value & 0xff;
  b[1] = (value >>> 8) & 0xff;
  b[2] = (value >>> 16) & 0xff;
  b[3] = (value >>> 24) & 0xff;
  yield* cpuWrite(mm, addr, b);
}
