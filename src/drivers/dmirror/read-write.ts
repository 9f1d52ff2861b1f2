/**
 * dmirror_read() / dmirror_write(): copy between the user's buffer and the mirrored pages
 * through the device table, faulting the rest of the range whenever the walk finds a missing
 * (or, for WRITE, read-only) entry. `faults` counts fault passes, `cpages` pages copied.
 */

import { charge } from '../../cost/charge.ts';
import type { Co } from '../../kernel/task.ts';
import { Errno } from '../../lib/errors.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import type { PageData } from '../../mm/page-data.ts';
import { backing } from './devmem.ts';
import type { Dmirror } from './dmirror.ts';
import { dmirrorFault } from './fault.ts';
import type { HmmDmirrorCmd } from './uapi.ts';

/**
 * The contents of the frame a device entry points at (a device-private page's are its backing
 * page's); a device write dirties the page.
 */
function frameData(d: Dmirror, pfn: number, write: boolean): PageData {
  const machine = d.mm.machine;
  const page = machine.phys.page(pfn);
  if (page === undefined) return machine.deviceMemory(pfn);
  if (page.pgmap !== null) return backing(page);
  if (write) page.dirty = true;
  return page.data;
}

/**
 * dmirror_do_read() of [start, end) into `into` (offset 0 at `start`): the pages read before
 * the first one the device has no entry for.
 */
export function* dmirrorReadBack(
  d: Dmirror,
  start: number,
  end: number,
  into: Uint8Array,
): Co<number> {
  return yield* walk(d, start, end, false, (data, o) => data.read(0, into, o, PAGE_SIZE), start);
}

/** The user buffer must hold `npages` pages (EFAULT otherwise); returns their byte size. */
export function checkBuffer(cmd: HmmDmirrorCmd): number {
  const bytes = cmd.npages * PAGE_SIZE;
  if (cmd.ptr.length < bytes)
    throw new Errno(
      'EFAULT',
      `user buffer of ${cmd.ptr.length} bytes is smaller than ${cmd.npages} pages`,
    );
  return bytes;
}

/**
 * The walk under the mutex from `start`: one page at a time, stopping at the first page the
 * device cannot use (ENOENT). Returns the pages copied.
 */
function* walk(
  d: Dmirror,
  start: number,
  end: number,
  write: boolean,
  copy: (data: PageData, offset: number) => void,
  base: number,
): Co<number> {
  yield* d.mutex.lock();
  let n = 0;
  try {
    for (let addr = start; addr < end; addr += PAGE_SIZE) {
      const t = d.pt.lookup(d.mm, addr);
      if (t === undefined || (write && !t.writable)) break;
      d.pt.access(d.mm, addr, write);
      copy(frameData(d, t.pfn, write), addr - base);
      n++;
    }
  } finally {
    d.mutex.unlock();
  }
  // The device's copy through the kernel bounce buffer (a memcpy per page).
  if (n > 0) charge('page.copy', n);
  return n;
}

function* copyLoop(
  d: Dmirror,
  cmd: HmmDmirrorCmd,
  write: boolean,
  copy: (data: PageData, offset: number) => void,
): Co {
  const end = cmd.addr + cmd.npages * PAGE_SIZE;
  let start = cmd.addr;
  for (;;) {
    const n = yield* walk(d, start, end, write, copy, cmd.addr);
    cmd.cpages += n;
    start += n * PAGE_SIZE;
    if (start >= end) return;
    yield* dmirrorFault(d, start, end, write);
    cmd.faults++;
  }
}

/** dmirror_read(): READ through a kernel bounce buffer, copied out only on success. */
export function* dmirrorRead(d: Dmirror, cmd: HmmDmirrorCmd): Co {
  const bytes = checkBuffer(cmd);
  const bounce = new Uint8Array(bytes);
  yield* copyLoop(d, cmd, false, (data, offset) => data.read(0, bounce, offset, PAGE_SIZE));
  cmd.ptr.set(bounce);
}

/** dmirror_write(): WRITE from the user's buffer, copied into a bounce buffer first. */
export function* dmirrorWrite(d: Dmirror, cmd: HmmDmirrorCmd): Co {
  const bytes = checkBuffer(cmd);
  const bounce = cmd.ptr.slice(0, bytes);
  yield* copyLoop(d, cmd, true, (data, offset) => data.write(0, bounce, offset, PAGE_SIZE));
}
