// The mm calls of the property: mmap, munmap, mprotect, mremap, madvise, fork, exit, CPU
// accesses, GUP and unpin.
import {
  cpuRead,
  cpuWrite,
  fork,
  getUserPages,
  MADV_DONTNEED,
  MADV_FREE,
  MAP_KNOWN,
  MAP_POPULATE,
  type Mm,
  type MmapArgs,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  madvise,
  mmap,
  mmput,
  mprotect,
  mremap,
  munmap,
  PAGE_SIZE,
  PROT_MASK,
  unpinUserPages,
} from '../../src/index.ts';
import {
  bitsIn,
  type Call,
  call,
  firstOf,
  longWalk,
  mapped,
  mmWords,
  PARTIAL,
  rangeOf,
  unaligned,
  WALK_LIMIT_PAGES,
} from './api-call.ts';
import type { Command } from './api-commands.ts';
import { planDevice } from './api-driver-calls.ts';
import { isIndex, resolveAddr, resolveLen, type World } from './api-world.ts';
import {
  beyond32Bits,
  crashesMessage,
  mremapWords,
  populateFails,
  unallocatableRead,
} from './awaiting-fix.ts';

const P = PAGE_SIZE;

/** The call `c` stands for in world `w` now, or null when the world has nothing to act on. */
export function plan(w: World, c: Command): Call | null {
  switch (c.op) {
    case 'mmap': {
      const mm = w.mmSlot(c.mm).mm;
      const len = resolveLen(c.len);
      const file = { rw: w.rw, ro: w.ro, dev: w.devices[0]!.file, none: null }[c.file];
      const a = {
        addr: resolveAddr(mm, c.addr),
        len,
        prot: c.prot,
        flags: c.flags,
        offset: c.offset,
      };
      const args = (file === null ? a : { ...a, file }) as unknown as MmapArgs;
      const populate = typeof c.flags === 'number' && (c.flags & MAP_POPULATE) !== 0;
      if (populate && isIndex(len) && len > WALK_LIMIT_PAGES * P) return null;
      const fileSize = file === null || file.ops !== null ? null : file.size;
      if (populate && populateFails(c.prot, c.flags as number, fileSize, c.offset, len))
        return null;
      if ([c.prot, c.flags].some((v) => crashesMessage(v) || beyond32Bits(v))) return null;
      return call('mmap', ['mmap', ...mmWords(mm)], Object.values(a), () => mmap(mm, args), {
        check: mapped(mm, len),
        invalid: firstOf(
          [!isIndex(len) || len === 0, 'a length that is not a positive integer'],
          [!bitsIn(c.prot, PROT_MASK), 'prot bits outside PROT_MASK'],
          [!bitsIn(c.flags, MAP_KNOWN), 'flag bits outside MAP_KNOWN'],
          // The offset is optional: absent (undefined, or null through `??`) is 0.
          [c.offset != null && unaligned(c.offset), 'an unaligned offset'],
        ),
      });
    }
    case 'munmap': {
      const mm = w.mmSlot(c.mm).mm;
      const [addr, len] = [resolveAddr(mm, c.addr), resolveLen(c.len)];
      const range = rangeOf(addr, len);
      return call(
        'munmap',
        ['munmap'],
        [addr, len],
        () => munmap(mm, addr as number, len as number),
        {
          range,
          invalid: firstOf(
            [unaligned(addr), 'an unaligned address'],
            [!isIndex(len) || len === 0, 'a length that is not a positive integer'],
          ),
          check: () =>
            range !== null && mm.vmasIn(range[0], range[1]).length > 0
              ? 'the range is still mapped'
              : null,
        },
      );
    }
    case 'mprotect': {
      const mm = w.mmSlot(c.mm).mm;
      const [addr, len] = [resolveAddr(mm, c.addr), resolveLen(c.len)];
      if (crashesMessage(c.prot) || beyond32Bits(c.prot)) return null;
      return call(
        'mprotect',
        ['mprotect'],
        [addr, len, c.prot],
        () => mprotect(mm, addr as number, len as number, c.prot as number),
        {
          range: rangeOf(addr, len),
          invalid: firstOf(
            [unaligned(addr), 'an unaligned address'],
            [!isIndex(len), 'a length that is not a non-negative integer'],
            [len !== 0 && !bitsIn(c.prot, PROT_MASK), 'prot bits outside PROT_MASK'],
          ),
        },
      );
    }
    case 'mremap': {
      const mm = w.mmSlot(c.mm).mm;
      const addr = resolveAddr(mm, c.addr);
      const [oldLen, newLen] = [resolveLen(c.oldLen), resolveLen(c.newLen)];
      const newAddr = resolveAddr(mm, c.newAddr);
      const args = [addr, oldLen, newLen, c.flags, newAddr] as const;
      if (beyond32Bits(c.flags)) return null;
      return call(
        'mremap',
        ['mremap', ...mremapWords()],
        args,
        () =>
          mremap(
            mm,
            addr as number,
            oldLen as number,
            newLen as number,
            c.flags as number,
            newAddr as number,
          ),
        {
          range: rangeOf(addr, oldLen),
          check: mapped(mm, newLen),
          invalid: firstOf(
            [unaligned(addr), 'an unaligned address'],
            [!isIndex(oldLen) || !isIndex(newLen) || newLen === 0, 'a bad length'],
            [!bitsIn(c.flags, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP), 'unknown flags'],
          ),
        },
      );
    }
    case 'madvise': {
      const mm = w.mmSlot(c.mm).mm;
      const [addr, len] = [resolveAddr(mm, c.addr), resolveLen(c.len)];
      return call(
        'madvise',
        ['madvise'],
        [addr, len, c.advice],
        () => madvise(mm, addr as number, len as number, c.advice as number),
        {
          range: rangeOf(addr, len),
          partial: (code) => code === 'ENOMEM',
          invalid: firstOf(
            [c.advice !== MADV_DONTNEED && c.advice !== MADV_FREE, 'an advice the model has not'],
            [unaligned(addr), 'an unaligned address'],
            [!isIndex(len), 'a length that is not a non-negative integer'],
          ),
        },
      );
    }
    case 'fork': {
      const mm = w.mmSlot(c.mm).mm;
      return call('fork', ['fork', ...mmWords(mm)], [], () => fork(mm), {
        // fork(): on ENOMEM the parent keeps the COW write protection already applied.
        partial: (code) => code === 'ENOMEM',
        commit: (child) => w.mms.push({ mm: child as Mm, live: true }),
      });
    }
    case 'exit': {
      const slot = w.mmSlot(c.mm);
      // A second mmput() is a refcount bug (a KernelBug by design), not bad input.
      if (!slot.live) return null;
      return call('mmput', ['mmput'], [], () => mmput(slot.mm), {
        commit: () => {
          slot.live = false;
        },
      });
    }
    case 'read': {
      const mm = w.mmSlot(c.mm).mm;
      const [addr, len] = [resolveAddr(mm, c.addr), resolveLen(c.len)];
      if (longWalk(mm, addr, len)) return null;
      if (unallocatableRead(len)) return null;
      return call(
        'cpuRead',
        ['SIGSEGV', 'SIGBUS', ...mmWords(mm)],
        [addr, len],
        () => cpuRead(mm, addr as number, len as number),
        { range: rangeOf(addr, len), partial: (code) => PARTIAL.has(code) },
      );
    }
    case 'write': {
      const mm = w.mmSlot(c.mm).mm;
      const addr = resolveAddr(mm, c.addr);
      const data = new Uint8Array(c.bytes).fill(0x5a);
      return call(
        'cpuWrite',
        ['SIGSEGV', 'SIGBUS', ...mmWords(mm)],
        [addr],
        () => cpuWrite(mm, addr as number, data),
        { range: rangeOf(addr, c.bytes), partial: (code) => PARTIAL.has(code) },
      );
    }
    case 'gup': {
      const mm = w.mmSlot(c.mm).mm;
      const start = resolveAddr(mm, c.addr);
      const n = c.npages;
      if (isIndex(n) && longWalk(mm, start, n * P)) return null;
      const options = { write: c.write, pin: c.pin, longterm: c.longterm };
      return call(
        'getUserPages',
        ['getUserPages', ...mmWords(mm)],
        [start, n],
        function* () {
          yield* mm.mmapLock.downRead();
          try {
            return yield* getUserPages(mm, start as number, n as number, options);
          } finally {
            mm.mmapLock.upRead();
          }
        },
        {
          range: isIndex(n) ? rangeOf(start, n * P) : null,
          partial: (code) => PARTIAL.has(code),
          check: (pages) =>
            Array.isArray(pages) && pages.length === n ? null : `returned ${String(pages)}`,
          commit: (pages) => w.pins.push({ pages: pages as [], pin: c.pin || c.longterm }),
        },
      );
    }
    case 'unpin': {
      const i = w.pins.length === 0 ? -1 : c.set % w.pins.length;
      if (i < 0) return null;
      const set = w.pins[i]!;
      return call(
        'unpinUserPages',
        ['unpinUserPages'],
        [],
        function* () {
          unpinUserPages(w.machine, set.pages, { pin: set.pin });
        },
        { commit: () => w.pins.splice(w.pins.indexOf(set), 1) },
      );
    }
    default:
      return planDevice(w, c);
  }
}
