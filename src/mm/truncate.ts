/**
 * File truncation (mm/truncate.c, truncate_setsize() / truncate_pagecache()) and
 * unmap_mapping_range() (mm/memory.c): the mappings of the truncated part are zapped under
 * i_mmap_rwsem, one CLEAR invalidation per VMA (zap_page_range_single()), then the page cache
 * and the backing store lose the pages past the new size.
 */
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { PAGE_SIZE, pageAlign } from './constants.ts';
import type { File } from './file.ts';
import { mmPath } from './mm-path.ts';
import { zapRange } from './zap.ts';

/**
 * unmap_mapping_range(): zaps, in every VMA of `file.mappings` (i_mmap, held for read), the
 * addresses that map file bytes [start, start + len) — len 0 means "to the end of the file".
 * With `evenCows` the private COW copies in that range go too (truncate needs that: every
 * access past EOF must fault); without, only entries of page-cache pages are removed (hole
 * punching, invalidation). Each affected VMA gets one CLEAR invalidation. No mmap_lock is taken.
 */
export function* unmapMappingRange(file: File, start: number, len: number, evenCows: boolean): Co {
  return yield* mmPath(
    'unmap_mapping_range',
    file.machine,
    unmapMappingRangeBody(file, start, len, evenCows),
  );
}

function* unmapMappingRangeBody(file: File, start: number, len: number, evenCows: boolean): Co {
  if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(len) || len < 0)
    throw new Errno('EINVAL', `unmap_mapping_range: bad range (${start}, ${len})`);
  const first = Math.floor(start / PAGE_SIZE);
  const last = len === 0 ? Number.POSITIVE_INFINITY : Math.ceil((start + len) / PAGE_SIZE);
  yield* file.iMmapLock.downRead();
  try {
    for (const vma of [...file.mappings]) {
      const pages = (vma.end - vma.start) / PAGE_SIZE;
      const from = Math.max(first, vma.pgoff);
      const to = Math.min(last, vma.pgoff + pages);
      if (from >= to) continue;
      const s = vma.start + (from - vma.pgoff) * PAGE_SIZE;
      const e = vma.start + (to - vma.pgoff) * PAGE_SIZE;
      yield* zapRange(vma.mm, [vma], s, e, 'CLEAR', evenCows ? {} : { onlyFilePages: true });
    }
  } finally {
    file.iMmapLock.upRead();
  }
}

/** truncate_inode_pages(): drops cached and stored pages past `size`, zeroes the partial tail. */
function truncateInodePages(file: File, size: number): void {
  const keep = Math.ceil(size / PAGE_SIZE);
  for (const [index, page] of [...file.cache]) if (index >= keep) file.dropPage(page);
  for (const index of [...file.disk.keys()]) if (index >= keep) file.disk.delete(index);
  const within = size % PAGE_SIZE;
  if (within === 0) return;
  const zeros = new Uint8Array(PAGE_SIZE - within);
  const tail = Math.floor(size / PAGE_SIZE);
  file.cache.get(tail)?.data.write(within, zeros, 0, zeros.length);
  file.disk.get(tail)?.write(within, zeros, 0, zeros.length);
}

/**
 * ftruncate(2) / do_truncate() → truncate_setsize(): sets the file size to `size`. Shrinking
 * updates i_size first, then does truncate_pagecache(): unmap_mapping_range() from the
 * rounded-up new size with even_cows (private COW copies past EOF go too), drops the pages past
 * the size from the page cache and the backing store (zeroing the tail of a partial last
 * page), and unmaps once more for what a racing fault mapped meanwhile. A later access past
 * EOF through a mapping is a SIGBUS-like EFAULT. Growing only sets the size.
 *
 * Errors (nothing changed): EINVAL when `size` is not a non-negative safe integer, or when the
 * file is not open for writing or is a device file (not a regular file).
 */
export function* truncateFile(file: File, size: number): Co {
  if (!Number.isSafeInteger(size) || size < 0)
    throw new Errno('EINVAL', `ftruncate: size ${String(size)} is not a non-negative integer`);
  if (!file.writable) throw new Errno('EINVAL', `ftruncate: ${file.name} is not open for writing`);
  if (file.ops !== null) throw new Errno('EINVAL', `ftruncate: ${file.name} is not a regular file`);
  const old = file.size;
  file.size = size;
  if (size >= old) return;
  yield* mmPath('truncate_pagecache', file.machine, truncatePagecache(file, size));
}

/** truncate_pagecache(): unmap, drop the pages, unmap what a racing fault mapped meanwhile. */
function* truncatePagecache(file: File, size: number): Co {
  const holeBegin = pageAlign(size);
  yield* unmapMappingRange(file, holeBegin, 0, true);
  truncateInodePages(file, size);
  yield* unmapMappingRange(file, holeBegin, 0, true);
}
