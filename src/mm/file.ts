import { RwSemaphore } from '../kernel/sync/rwsem.ts';
import type { Co } from '../kernel/task.ts';
import { Errno } from '../lib/errors.ts';
import { PAGE_SIZE } from './constants.ts';
import type { Machine } from './machine.ts';
import type { Page, PageCacheOwner } from './page.ts';
import { PageData } from './page-data.ts';
import type { Vma } from './vma.ts';

/** Driver hooks of a file (a subset of file_operations). */
export interface FileOps {
  /** ->mmap(): sets up a new VMA (flags, vm ops); an Errno rejects the mmap. */
  mmap?(file: File, vma: Vma): Co;
  /** ->release(): the last reference (the descriptor's or a VMA's vm_file) was dropped. */
  release?(file: File): Co;
}

/**
 * A file (`struct file` with its inode): its size, the backing store ("disk", page contents
 * by index), the page cache of resident pages, and i_mmap (the VMAs mapping it) with its lock.
 * Shared anonymous memory is a shmem file of this kind.
 */
export class File implements PageCacheOwner {
  readonly id: number;
  readonly name: string;
  readonly machine: Machine;
  size: number;
  /** False for a file opened read-only: a shared writable mapping is refused. */
  readonly writable: boolean;
  readonly ops: FileOps | null;
  /** The page cache: page index → frame (each holds one reference for the cache). */
  readonly cache = new Map<number, Page>();
  /** Backing store: written-back page contents by index. */
  readonly disk = new Map<number, PageData>();
  /** i_mmap: VMAs mapping this file. */
  readonly mappings = new Set<Vma>();
  /** i_mmap_rwsem. */
  readonly iMmapLock: RwSemaphore;
  /** Shmem files keep pages resident (swap-backed in Linux; here they are not reclaimed). */
  readonly shmem: boolean;
  /**
   * f_count: references held by descriptors and by VMAs (vm_file). A driver's file starts with
   * the one of the descriptor that opened it; ->release runs when the last is dropped.
   */
  refs = 0;
  /** file->private_data: the driver's object behind a device file. */
  privateData: unknown = null;

  constructor(
    machine: Machine,
    id: number,
    name: string,
    options: { size?: number; writable?: boolean; ops?: FileOps; shmem?: boolean },
  ) {
    this.machine = machine;
    this.id = id;
    this.name = name;
    this.size = options.size ?? 0;
    this.writable = options.writable ?? true;
    this.ops = options.ops ?? null;
    this.shmem = options.shmem ?? false;
    this.iMmapLock = new RwSemaphore(`${name}.i_mmap_rwsem`, 'i_mmap_rwsem');
  }

  /**
   * find_or_create_page(): the cached frame for `index`, reading it from the backing store
   * if needed. Allocation may reclaim; null when memory is exhausted.
   */
  *getPage(index: number): Co<Page | null> {
    const cached = this.cache.get(index);
    if (cached !== undefined) return cached;
    const page = yield* this.machine.allocPage('file');
    if (page === null) return null;
    // Another task may have filled the slot while allocation slept.
    const raced = this.cache.get(index);
    if (raced !== undefined) {
      this.machine.phys.put(page);
      return raced;
    }
    const stored = this.disk.get(index);
    if (stored !== undefined) page.data.copyFrom(stored);
    page.mapping = this;
    page.index = index;
    this.cache.set(index, page);
    this.machine.phys.lru.add(page);
    return page;
  }

  /** get_file(). */
  get(): void {
    this.refs++;
  }

  /** fput() from the task that closes the descriptor: the last reference calls ->release now. */
  *put(): Co {
    if (this.refs <= 0) throw new Errno('EBADF', `fput of ${this.name}, which has no reference`);
    if (--this.refs === 0 && this.ops?.release !== undefined) yield* this.ops.release(this);
  }

  /**
   * fput() from the mm (remove_vma): the release, if this was the last reference, runs later
   * in a task of its own (task_work / delayed_fput), never under the mm's locks.
   */
  putDeferred(): void {
    if (this.refs <= 0) throw new Errno('EBADF', `fput of ${this.name}, which has no reference`);
    const release = this.ops?.release;
    if (--this.refs > 0 || release === undefined) return;
    this.machine.kernel.spawn(`fput(${this.name})`, () => release(this));
  }

  /** writepage(): copies a dirty cached page to the backing store and marks it clean. */
  writeback(page: Page): void {
    const copy = new PageData();
    copy.copyFrom(page.data);
    this.disk.set(page.index, copy);
    page.dirty = false;
  }

  /** Removes an unmapped page from the cache and drops the cache's reference. */
  dropPage(page: Page): void {
    if (this.cache.get(page.index) !== page) return;
    this.cache.delete(page.index);
    page.mapping = null;
    this.machine.phys.put(page);
  }

  /** pread(): reads up to `len` bytes at `offset`, stopping at the file size. */
  *pread(offset: number, len: number): Co<Uint8Array> {
    checkIo(offset, len);
    const n = Math.max(0, Math.min(len, this.size - offset));
    const out = new Uint8Array(n);
    for (let done = 0; done < n; ) {
      const pos = offset + done;
      const within = pos % PAGE_SIZE;
      const chunk = Math.min(n - done, PAGE_SIZE - within);
      const page = yield* this.getPage(Math.floor(pos / PAGE_SIZE));
      if (page === null) throw new Errno('ENOMEM', `pread of ${this.name}: out of memory`);
      page.data.read(within, out, done, chunk);
      done += chunk;
    }
    return out;
  }

  /** pwrite(): writes `data` at `offset` through the page cache, growing the file. */
  *pwrite(offset: number, data: Uint8Array): Co<number> {
    checkIo(offset, data.length);
    if (!this.writable)
      throw new Errno('EPERM', `pwrite to ${this.name}: file is not open for writing`);
    for (let done = 0; done < data.length; ) {
      const pos = offset + done;
      const within = pos % PAGE_SIZE;
      const chunk = Math.min(data.length - done, PAGE_SIZE - within);
      const page = yield* this.getPage(Math.floor(pos / PAGE_SIZE));
      if (page === null) throw new Errno('ENOMEM', `pwrite to ${this.name}: out of memory`);
      page.data.write(within, data, done, chunk);
      page.dirty = true;
      done += chunk;
    }
    this.size = Math.max(this.size, offset + data.length);
    return data.length;
  }
}

function checkIo(offset: number, len: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new Errno('EINVAL', `file offset must be a non-negative integer, got ${offset}`);
  if (!Number.isSafeInteger(len) || len < 0)
    throw new Errno('EINVAL', `length must be a non-negative integer, got ${len}`);
  if (offset + len > Number.MAX_SAFE_INTEGER)
    throw new Errno('EOVERFLOW', `offset ${offset} + length ${len} overflows`);
}
