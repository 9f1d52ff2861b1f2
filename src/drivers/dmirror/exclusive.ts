/**
 * dmirror's atomic access (lib/test_hmm.c): dmirror_exclusive() with dmirror_atomic_map(), and
 * dmirror_check_atomic() (CHECK_EXCLUSIVE).
 */

import type { Co } from '../../kernel/task.ts';
import { Errno } from '../../lib/errors.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import { makeDeviceExclusive } from '../../mm/device-exclusive.ts';
import { mmput } from '../../mm/exit.ts';
import { mmgetNotZero } from '../../mm/mm-refs.ts';
import { type Page, unlockPage } from '../../mm/page.ts';
import type { Dmirror } from './dmirror.ts';
import { checkBuffer, dmirrorReadBack } from './read-write.ts';
import type { HmmDmirrorCmd } from './uapi.ts';

/**
 * dmirror_exclusive(): each page of the range is made device-exclusive (no owner, so this
 * mirror's entries are invalidated too) and mapped with the ATOMIC tag; then the range is read
 * back through the table: `cpages` counts the pages read, ENOENT if one is missing. An error
 * of make_device_exclusive() aborts the command.
 */
export function* dmirrorExclusive(d: Dmirror, cmd: HmmDmirrorCmd): Co {
  const bytes = checkBuffer(cmd);
  const start = cmd.addr;
  const end = start + cmd.npages * PAGE_SIZE;
  if (!mmgetNotZero(d.mm)) throw new Errno('EINVAL', `${d.pt.name}: the mirrored process is gone`);
  try {
    yield* d.mm.mmapLock.downRead();
    try {
      for (let addr = start; addr < end; addr += PAGE_SIZE) {
        const page = yield* makeDeviceExclusive(d.mm, addr, null);
        try {
          yield* atomicMap(d, addr, page);
        } finally {
          unlockPage(d.mm.machine, page);
          d.mm.machine.phys.put(page);
        }
      }
    } finally {
      d.mm.mmapLock.upRead();
    }
  } finally {
    yield* mmput(d.mm);
  }
  const bounce = new Uint8Array(bytes);
  const n = yield* dmirrorReadBack(d, start, end, bounce);
  cmd.cpages = n;
  if (n < cmd.npages) throw new Errno('ENOENT', `${d.pt.name}: a page lost its atomic entry`);
  cmd.ptr.set(bounce);
}

/** dmirror_atomic_map(): under the mutex the page enters the table with the ATOMIC tag. */
function* atomicMap(d: Dmirror, addr: number, page: Page): Co {
  yield* d.mutex.lock();
  d.pt.map(d.mm, addr, { pfn: page.pfn, gen: page.gen, writable: false, atomic: true });
  d.mutex.unlock();
}

/** dmirror_check_atomic(): EPERM while any page of the range still has its ATOMIC entry. */
export function* dmirrorCheckExclusive(d: Dmirror, cmd: HmmDmirrorCmd): Co {
  yield* d.mutex.lock();
  try {
    const end = cmd.addr + cmd.npages * PAGE_SIZE;
    for (let addr = cmd.addr; addr < end; addr += PAGE_SIZE)
      if (d.pt.lookup(d.mm, addr)?.atomic === true)
        throw new Errno('EPERM', `${d.pt.name}: the page at ${addr} is still exclusive`);
  } finally {
    d.mutex.unlock();
  }
}
