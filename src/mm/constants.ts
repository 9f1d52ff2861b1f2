/**
 * Sizes, limits and flag values of the simulated x86-64 mm, with the values of the Linux UAPI
 * headers where user space passes them (mman-common.h, mman.h, mm.h for VM_*).
 */

/** PAGE_SHIFT: log2 of the page size. */
export const PAGE_SHIFT = 12;
/** PAGE_SIZE: 4 KiB, the only base page size of the model. */
export const PAGE_SIZE = 4096;
/** PMD_SIZE: 2 MiB. */
export const PMD_SIZE = 2 * 1024 * 1024;
/** HPAGE_PMD_NR: the pages of a PMD-mapped transparent huge page (512). */
export const HPAGE_PMD_NR = PMD_SIZE / 4096;
/** TASK_SIZE on x86-64 with 4-level paging: the user address limit. */
export const TASK_SIZE = 2 ** 47;
/** Where top-down mmap placement starts (mmap_base, below the stack gap). */
export const MMAP_BASE = TASK_SIZE - 2 ** 40;
/** mmap_min_addr: no mapping below this. */
export const MMAP_MIN_ADDR = 0x10000;

// PROT_* (mman-common.h)
/** PROT_NONE: no access. */
export const PROT_NONE = 0;
/** PROT_READ: pages may be read. */
export const PROT_READ = 0x1;
/** PROT_WRITE: pages may be written. */
export const PROT_WRITE = 0x2;
/** PROT_EXEC: pages may be executed. */
export const PROT_EXEC = 0x4;
/** The PROT_* bits mmap(2) and mprotect(2) accept. */
export const PROT_MASK = PROT_READ | PROT_WRITE | PROT_EXEC;

// MAP_* (mman-common.h / x86 mman.h)
/** MAP_SHARED: writes reach the file and every other mapping of it. */
export const MAP_SHARED = 0x01;
/** MAP_PRIVATE: a copy-on-write mapping. */
export const MAP_PRIVATE = 0x02;
/** MAP_FIXED: map exactly at `addr`, replacing what is there. */
export const MAP_FIXED = 0x10;
/** MAP_ANONYMOUS: zero-filled memory backed by no file. */
export const MAP_ANONYMOUS = 0x20;
/** MAP_POPULATE: fault every page in before mmap(2) returns. */
export const MAP_POPULATE = 0x8000;
/** MAP_FIXED_NOREPLACE: map exactly at `addr`, or fail with EEXIST. */
export const MAP_FIXED_NOREPLACE = 0x100000;
/** MAP_HUGETLB: back the mapping with hugetlbfs pages (not modelled: mmap(2) says so). */
export const MAP_HUGETLB = 0x40000;
/** The MAP_* bits the model implements; mmap(2) rejects others with EINVAL. */
export const MAP_KNOWN =
  MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_POPULATE | MAP_FIXED_NOREPLACE;

// MREMAP_* (mman.h)
/** MREMAP_MAYMOVE: mremap(2) may move the mapping. */
export const MREMAP_MAYMOVE = 1;
/** MREMAP_FIXED: mremap(2) moves the mapping to `newAddr`. */
export const MREMAP_FIXED = 2;
/** MREMAP_DONTUNMAP: mremap(2) leaves the old range mapped, and empty. */
export const MREMAP_DONTUNMAP = 4;

// MADV_* (mman-common.h)
/** MADV_DONTNEED: drop the pages; the next touch sees zeroes or the file. */
export const MADV_DONTNEED = 4;
/** MADV_FREE: the pages may be reclaimed lazily unless written again. */
export const MADV_FREE = 8;
/** MADV_HUGEPAGE: the range may get transparent huge pages (sets VM_HUGEPAGE). */
export const MADV_HUGEPAGE = 14;
/** MADV_NOHUGEPAGE: the range gets no new transparent huge pages (sets VM_NOHUGEPAGE). */
export const MADV_NOHUGEPAGE = 15;

// VM_* flags of a VMA (include/linux/mm.h)
/** VM_READ: the VMA may be read. */
export const VM_READ = 0x1;
/** VM_WRITE: the VMA may be written. */
export const VM_WRITE = 0x2;
/** VM_EXEC: the VMA may be executed. */
export const VM_EXEC = 0x4;
/** VM_SHARED: a shared mapping (writes reach the file). */
export const VM_SHARED = 0x8;
/** VM_MAYREAD: mprotect(2) may add read access. */
export const VM_MAYREAD = 0x10;
/** VM_MAYWRITE: mprotect(2) may add write access. */
export const VM_MAYWRITE = 0x20;
/** VM_MAYEXEC: mprotect(2) may add exec access. */
export const VM_MAYEXEC = 0x40;
/** VM_MAYSHARE: mapped MAP_SHARED (kept when the file is read-only). */
export const VM_MAYSHARE = 0x80;
/** VM_PFNMAP: raw device frames with no struct page (remap_pfn_range()). */
export const VM_PFNMAP = 0x400;
/** VM_LOCKED: mlock()ed. fork() and mremap(2) handle the flag; the model's reclaim ignores it. */
export const VM_LOCKED = 0x2000;
/** VM_IO: memory-mapped IO; GUP refuses it. */
export const VM_IO = 0x4000;
/** VM_DONTCOPY: fork() does not copy the VMA to the child. */
export const VM_DONTCOPY = 0x20000;
/** VM_DONTEXPAND: mremap(2) may not grow the VMA. */
export const VM_DONTEXPAND = 0x40000;
/** VM_MIXEDMAP: device frames and struct pages mixed (vm_insert_pfn/page()). */
export const VM_MIXEDMAP = 0x10000000;
/** VM_HUGEPAGE: MADV_HUGEPAGE'd; the model's THP mode is "madvise", so only these VMAs get THPs. */
export const VM_HUGEPAGE = 0x20000000;
/** VM_NOHUGEPAGE: MADV_NOHUGEPAGE'd. */
export const VM_NOHUGEPAGE = 0x40000000;
/** VM_DONTDUMP: left out of core dumps. */
export const VM_DONTDUMP = 0x4000000;

/**
 * True when `v` is a whole number none of whose bits lies outside `known`, read as the kernel
 * reads an unsigned long: bits above bit 31 and negative values count (JavaScript's bitwise
 * operators would drop them).
 */
export function onlyKnownBits(v: unknown, known: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= known && (v & ~known) === 0;
}

/** A flag word for a message: hex when it is an integer, else as given. */
export function flagWord(v: unknown): string {
  if (typeof v === 'number' && Number.isInteger(v)) return v < 0 ? `-${hex(-v)}` : hex(v);
  if (typeof v === 'bigint') return `${v}n`;
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

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
