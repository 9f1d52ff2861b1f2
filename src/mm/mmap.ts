import type { Co } from '../kernel/task.ts';
import { Errno, isErrno } from '../lib/errors.ts';
import {
  flagWord,
  hex,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_HUGETLB,
  MAP_KNOWN,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MMAP_BASE,
  MMAP_MIN_ADDR,
  onlyKnownBits,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_MASK,
  PROT_READ,
  PROT_WRITE,
  pageAlign,
  pageAligned,
  TASK_SIZE,
  VM_EXEC,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './constants.ts';
import { handleMmFault } from './fault.ts';
import type { File } from './file.ts';
import type { Mm } from './mm.ts';
import { mmPath } from './mm-path.ts';
import { doMunmap } from './munmap.ts';
import { Vma } from './vma.ts';
import { zapRange } from './zap.ts';

/** Arguments of mmap(2). */
export interface MmapArgs {
  /** Hint, or the exact address with MAP_FIXED. Default 0. */
  readonly addr?: number;
  readonly len: number;
  readonly prot: number;
  readonly flags: number;
  /** The file, unless MAP_ANONYMOUS. */
  readonly file?: File | null;
  /** File offset in bytes, page aligned. */
  readonly offset?: number;
}

/** calc_vm_prot_bits(): VM_READ/WRITE/EXEC from PROT_*. */
export function protToVm(prot: number): number {
  return (
    (prot & PROT_READ ? VM_READ : 0) |
    (prot & PROT_WRITE ? VM_WRITE : 0) |
    (prot & PROT_EXEC ? VM_EXEC : 0)
  );
}

function checkArgs(a: MmapArgs): { addr: number; len: number; offset: number } {
  const addr = a.addr ?? 0;
  const offset = a.offset ?? 0;
  if (!Number.isSafeInteger(a.len) || a.len <= 0)
    throw new Errno('EINVAL', `mmap: length ${String(a.len)} must be a positive integer`);
  const len = pageAlign(a.len);
  if (len > TASK_SIZE) throw new Errno('ENOMEM', `mmap: length ${a.len} exceeds the address space`);
  if (!Number.isSafeInteger(addr) || addr < 0)
    throw new Errno('EINVAL', `mmap: address ${String(addr)} is not a user address`);
  if (!onlyKnownBits(a.prot, PROT_MASK))
    throw new Errno('EINVAL', `mmap: prot ${flagWord(a.prot)} has bits outside PROT_MASK`);
  if (typeof a.flags === 'number' && a.flags & MAP_HUGETLB)
    throw new Errno('EINVAL', 'mmap: MAP_HUGETLB needs hugetlbfs, which the model does not have');
  if (!onlyKnownBits(a.flags, MAP_KNOWN))
    throw new Errno('EINVAL', `mmap: flags ${flagWord(a.flags)} has bits outside MAP_KNOWN`);
  const type = a.flags & (MAP_SHARED | MAP_PRIVATE);
  if (type !== MAP_SHARED && type !== MAP_PRIVATE)
    throw new Errno('EINVAL', 'mmap: exactly one of MAP_SHARED and MAP_PRIVATE is required');
  if (!Number.isSafeInteger(offset) || offset < 0 || !pageAligned(offset))
    throw new Errno('EINVAL', `mmap: offset ${String(offset)} is not page aligned`);
  if (offset + len > Number.MAX_SAFE_INTEGER)
    throw new Errno('EOVERFLOW', 'mmap: offset + length overflows');
  if (a.flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    if (!pageAligned(addr))
      throw new Errno('EINVAL', `mmap: MAP_FIXED address ${hex(addr)} is not page aligned`);
    if (addr + len > TASK_SIZE)
      throw new Errno('ENOMEM', `mmap: [${hex(addr)}, +${len}) goes past TASK_SIZE`);
    if (addr < MMAP_MIN_ADDR) throw new Errno('EPERM', `mmap: ${hex(addr)} is below mmap_min_addr`);
  }
  if (!(a.flags & MAP_ANONYMOUS) && (a.file === undefined || a.file === null))
    throw new Errno('EBADF', 'mmap: a file mapping needs a file');
  return { addr, len, offset };
}

/** get_unmapped_area(): the hint if it is free, else the highest free gap below mmap_base. */
export function unmappedArea(mm: Mm, hint: number, len: number, op = 'mmap'): number {
  const alignedHint = hint - (hint % PAGE_SIZE);
  if (
    hint !== 0 &&
    alignedHint >= MMAP_MIN_ADDR &&
    alignedHint + len <= TASK_SIZE &&
    mm.vmasIn(alignedHint, alignedHint + len).length === 0
  ) {
    return alignedHint;
  }
  let top = MMAP_BASE;
  for (let i = mm.vmaIndexAfter(MMAP_BASE - 1) - 1; i >= -1; i--) {
    const v = mm.vmas[i];
    const floor = v === undefined ? MMAP_MIN_ADDR : v.end;
    if (v !== undefined && v.start >= top) continue;
    if (top - floor >= len) return top - len;
    if (v === undefined) break;
    top = Math.min(top, v.start);
  }
  throw new Errno('ENOMEM', `${op}: no free range of ${len} bytes`);
}

/**
 * do_mmap() with mmap_lock held for write: validates, places, replaces what MAP_FIXED
 * covers (one UNMAP invalidation), creates the VMA (a shmem file behind shared anonymous
 * memory) and calls the file's ->mmap. Returns the address.
 */
export function* doMmap(mm: Mm, a: MmapArgs): Co<number> {
  return yield* mmPath('do_mmap', mm, doMmapBody(mm, a));
}

function* doMmapBody(mm: Mm, a: MmapArgs): Co<number> {
  const { addr: hint, len, offset } = checkArgs(a);
  const shared = (a.flags & MAP_SHARED) !== 0;
  let file = a.flags & MAP_ANONYMOUS ? null : (a.file ?? null);
  if (file !== null && shared && a.prot & PROT_WRITE && !file.writable) {
    throw new Errno(
      'EACCES',
      `mmap: ${file.name} is not open for writing, shared writable mapping refused`,
    );
  }
  let addr: number;
  if (a.flags & MAP_FIXED_NOREPLACE) {
    if (mm.vmasIn(hint, hint + len).length > 0)
      throw new Errno('EEXIST', `mmap: [${hex(hint)}, +${len}) is already mapped`);
    addr = hint;
  } else if (a.flags & MAP_FIXED) {
    addr = hint;
    yield* doMunmap(mm, addr, addr + len);
  } else {
    addr = unmappedArea(mm, hint, len);
  }
  if (shared && file === null)
    file = mm.machine.createFile(`shmem@mm${mm.id}:${hex(addr)}`, { size: len, shmem: true });
  let flags = protToVm(a.prot) | VM_MAYREAD | VM_MAYEXEC | VM_MAYWRITE;
  if (shared) {
    flags |= VM_SHARED | VM_MAYSHARE;
    if (file !== null && !file.writable) flags &= ~(VM_MAYWRITE | VM_SHARED);
  }
  // do_mmap(): an anonymous mapping ignores the offset (a shared one maps its shmem object from 0).
  const pgoff = a.flags & MAP_ANONYMOUS ? 0 : offset / PAGE_SIZE;
  const vma = new Vma(mm, addr, addr + len, flags, file, pgoff);
  if (file?.ops?.mmap !== undefined) {
    try {
      yield* file.ops.mmap(file, vma);
    } catch (e) {
      // mmap_region()'s unmap_region(): entries a failing ->mmap already set go with it.
      if (mm.addressesIn(addr, addr + len).length > 0)
        yield* zapRange(mm, [vma], addr, addr + len, 'UNMAP');
      throw e;
    }
  }
  mm.insertVma(vma);
  file?.mappings.add(vma);
  file?.get();
  return addr;
}

/**
 * __mm_populate(): faults in every page of [addr, addr + len). With `ignoreErrors` (mm_populate()
 * for MAP_POPULATE) a page that cannot be faulted in (PROT_NONE, past EOF, no memory) ends that
 * VMA's part and the rest goes on; without, the error is thrown.
 */
export function* populate(
  mm: Mm,
  addr: number,
  len: number,
  write: boolean,
  ignoreErrors = false,
): Co {
  yield* mm.mmapLock.downRead();
  try {
    for (let a = addr; a < addr + len; a += PAGE_SIZE) {
      const vma = mm.findVma(a);
      if (vma === undefined || vma.isIoOrPfnmap) continue;
      try {
        yield* handleMmFault(mm, a, write && vma.writable);
      } catch (e) {
        if (!ignoreErrors || !isErrno(e)) throw e;
        a = vma.end - PAGE_SIZE; // go on at the next VMA
      }
    }
  } finally {
    mm.mmapLock.upRead();
  }
}

/** mmap(2): takes mmap_lock for write; MAP_POPULATE faults the range in afterwards. */
export function* mmap(mm: Mm, a: MmapArgs): Co<number> {
  if (mm.exited) throw new Errno('EFAULT', `mmap on mm${mm.id} after exit`);
  yield* mm.mmapLock.downWrite();
  let addr: number;
  try {
    addr = yield* doMmap(mm, a);
  } finally {
    mm.mmapLock.upWrite();
  }
  if (a.flags & MAP_POPULATE)
    yield* populate(mm, addr, pageAlign(a.len), (a.prot & PROT_WRITE) !== 0, true);
  return addr;
}
