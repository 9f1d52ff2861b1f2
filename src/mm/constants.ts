/**
 * Sizes, limits and flag values of the simulated x86-64 mm, with the values of the Linux UAPI
 * headers where user space passes them (mman-common.h, mman.h, mm.h for VM_*).
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
/** PMD_SIZE: 2 MiB. */
export const PMD_SIZE = 2 * 1024 * 1024;
/** TASK_SIZE on x86-64 with 4-level paging: the user address limit. */
export const TASK_SIZE = 2 ** 47;
/** Where top-down mmap placement starts (mmap_base, below the stack gap). */
export const MMAP_BASE = TASK_SIZE - 2 ** 40;
/** mmap_min_addr: no mapping below this. */
export const MMAP_MIN_ADDR = 0x10000;

// PROT_* (mman-common.h)
export const PROT_NONE = 0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const PROT_MASK = PROT_READ | PROT_WRITE | PROT_EXEC;

// MAP_* (mman-common.h / x86 mman.h)
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_POPULATE = 0x8000;
export const MAP_FIXED_NOREPLACE = 0x100000;
export const MAP_KNOWN =
  MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_POPULATE | MAP_FIXED_NOREPLACE;

// MREMAP_* (mman.h)
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

// MADV_* (mman-common.h)
export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;

// VM_* flags of a VMA (include/linux/mm.h)
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
export const VM_PFNMAP = 0x400;
export const VM_LOCKED = 0x2000;
export const VM_IO = 0x4000;
export const VM_DONTCOPY = 0x20000;
export const VM_DONTEXPAND = 0x40000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_DONTDUMP = 0x4000000;

/** True when `addr` is a multiple of the page size. */
export function pageAligned(addr: number): boolean {
  return addr % PAGE_SIZE === 0;
}

/** `len` rounded up to whole pages (PAGE_ALIGN). */
export function pageAlign(len: number): number {
  return Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
}

/** Hex rendering of an address for messages. */
export function hex(addr: number): string {
  return `0x${addr.toString(16)}`;
}
