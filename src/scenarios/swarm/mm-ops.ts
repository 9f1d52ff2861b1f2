// The mm operations of a `swarm` thread, each on pages [page, page + count) of its process's
// region, each telling the data model what the pages may hold before it changes them.
import { join, sleep } from '../../kernel/context.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { Co } from '../../kernel/task.ts';
import { isErrno } from '../../lib/errors.ts';
import {
  MADV_DONTNEED,
  MADV_FREE,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../mm/constants.ts';
import { cpuRead, cpuWrite } from '../../mm/cpu-access.ts';
import { mmput } from '../../mm/exit.ts';
import { fork } from '../../mm/fork.ts';
import { getUserPages, unpinUserPages } from '../../mm/gup.ts';
import { madvise } from '../../mm/madvise.ts';
import { migratePage } from '../../mm/migrate.ts';
import type { Mm } from '../../mm/mm.ts';
import { mmdrop, mmgrab } from '../../mm/mm-refs.ts';
import { mmap } from '../../mm/mmap.ts';
import { mprotect } from '../../mm/mprotect.ts';
import { mremap } from '../../mm/mremap.ts';
import { munmap } from '../../mm/munmap.ts';
import { oomReap } from '../../mm/oom-reaper.ts';
import type { Page } from '../../mm/page.ts';
import { exitMm } from '../../mm/process.ts';
import { shrinkMemory } from '../../mm/reclaim.ts';
import { truncateFile } from '../../mm/truncate.ts';
import { pageOf } from '../page-values.ts';
import { touchCopies } from './mmapio-client.ts';
import type { MmOp, PlannedOp } from './plan.ts';
import {
  isRaceError,
  onMm,
  pageAddr,
  STEP_NS,
  type SwarmProc,
  type SwarmWorld,
  stepValue,
} from './world.ts';

const RW = PROT_READ | PROT_WRITE;
/** Where mremap-move parks a range: far below the regions, a slot per step. */
const SPARE_BASE = 2 ** 44;
const SPARE_SLOT = 16 * PAGE_SIZE;
const spareOf = (proc: SwarmProc, id: number) =>
  SPARE_BASE + (proc.index * 2 ** 20 + id) * SPARE_SLOT;

/** One operation of a thread on its process. */
type MmStep = (w: SwarmWorld, proc: SwarmProc, op: PlannedOp) => Co;

/** The pages of a step: index in the world's data model, address, and rank in the step. */
function pagesOf(proc: SwarmProc, op: PlannedOp) {
  return Array.from({ length: op.count }, (_, i) => ({
    i,
    value: proc.first + op.page + i,
    addr: pageAddr(proc, op.page + i),
  }));
}

/** A CPU read of each page of the step, checked (an EFAULT on a page is a race: the next is read still). */
export function* readPages(w: SwarmWorld, proc: SwarmProc, mm: Mm, op: PlannedOp, who: string): Co {
  for (const p of pagesOf(proc, op)) {
    try {
      w.values.check(who, p.value, yield* cpuRead(mm, p.addr, PAGE_SIZE), 0);
    } catch (e) {
      if (!isRaceError(e)) throw e;
    }
  }
}

const steps: Record<MmOp, MmStep> = {
  *'cpu-read'(w, proc, op) {
    // Twice: the second pass hits the TLB the first filled, as a thread's loop would.
    yield* onMm(proc, (mm) => readPages(w, proc, mm, op, `p${proc.index} CPU read`));
    yield* onMm(proc, (mm) => readPages(w, proc, mm, op, `p${proc.index} CPU read`));
  },
  *'cpu-write'(w, proc, op) {
    yield* onMm(proc, function* (mm) {
      for (const p of pagesOf(proc, op)) {
        const v = stepValue(op.id, p.i);
        w.values.allow(p.value, v);
        try {
          yield* cpuWrite(mm, p.addr, pageOf(v));
        } catch (e) {
          if (!isRaceError(e)) throw e;
        }
      }
    });
  },
  *'mmap-fixed'(w, proc, op) {
    yield* onMm(proc, function* (mm) {
      for (const p of pagesOf(proc, op)) w.values.revive(p.value);
      const addr = pageAddr(proc, op.page);
      const len = op.count * PAGE_SIZE;
      yield* mmap(mm, { addr, len, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
    });
  },
  *munmap(w, proc, op) {
    yield* onMm(proc, function* (mm) {
      for (const p of pagesOf(proc, op)) w.values.unmap(p.value);
      yield* munmap(mm, pageAddr(proc, op.page), op.count * PAGE_SIZE);
    });
  },
  *mprotect(_w, proc, op) {
    yield* onMm(proc, function* (mm) {
      const addr = pageAddr(proc, op.page);
      yield* mprotect(mm, addr, op.count * PAGE_SIZE, PROT_READ);
      yield* sleep(STEP_NS);
      yield* mprotect(mm, addr, op.count * PAGE_SIZE, RW);
    });
  },
  *'mremap-move'(_w, proc, op) {
    // Out to a spare slot and back: the pages keep their data, their range is a hole between.
    yield* onMm(proc, function* (mm) {
      const addr = pageAddr(proc, op.page);
      const len = op.count * PAGE_SIZE;
      const spare = spareOf(proc, op.id);
      yield* mremap(mm, addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, spare);
      yield* sleep(STEP_NS);
      yield* mremap(mm, spare, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr);
    });
  },
  *'mremap-grow'(_w, proc, op) {
    // The region's last page grows in place (where nothing follows it) and shrinks back.
    yield* onMm(proc, function* (mm) {
      const last = pageAddr(proc, proc.pages - 1);
      yield* mremap(mm, last, PAGE_SIZE, (1 + op.count) * PAGE_SIZE, 0);
      yield* sleep(STEP_NS);
      yield* mremap(mm, last, (1 + op.count) * PAGE_SIZE, PAGE_SIZE, 0);
    });
  },
  *'madv-dontneed'(w, proc, op) {
    yield* onMm(proc, function* (mm) {
      for (const p of pagesOf(proc, op)) w.values.allow(p.value, 0);
      yield* madvise(mm, pageAddr(proc, op.page), op.count * PAGE_SIZE, MADV_DONTNEED);
    });
  },
  *'madv-free'(w, proc, op) {
    yield* onMm(proc, function* (mm) {
      for (const p of pagesOf(proc, op)) w.values.allow(p.value, 0);
      yield* madvise(mm, pageAddr(proc, op.page), op.count * PAGE_SIZE, MADV_FREE);
    });
  },
  *fork(w, proc, op) {
    yield* onMm(proc, function* (mm) {
      const child = yield* fork(mm);
      const kid = kernel().spawn(`p${proc.index}.child${op.id}`, () =>
        childLife(w, proc, op, child),
      );
      yield* join(kid);
    });
  },
  *exit(_w, proc) {
    // exit_mm(): the process drops its own reference; the last user's mmput runs exit_mmap.
    if (proc.exited) return;
    proc.exited = true;
    yield* exitMm(proc.process);
  },
  *kswapd(w, proc, op) {
    // Enough to reach the region's pages past the others on the LRU.
    yield* shrinkMemory(w.machine, proc.pages + 2 * op.count);
    yield* sleep(STEP_NS);
  },
  *migrate(w, proc, op) {
    if (op.count % 2 === 1) {
      // The step's pages, where the region maps them.
      for (const p of pagesOf(proc, op)) {
        const page = proc.mm.pte(p.addr)?.page;
        if (page) yield* migratePage(w.machine, page);
      }
    } else {
      // kcompactd: every page on the LRU, in LRU order, wherever it is mapped (a page mremap
      // moved away too).
      for (const page of [...w.machine.phys.lru]) yield* migratePage(w.machine, page);
    }
    yield* sleep(STEP_NS);
  },
  *'oom-reap'(_w, proc) {
    // The OOM killer picks the process: it pins the mm (signal->oom_mm, mmgrab) and kills it;
    // the reaper empties the mm while its threads and the exit run on.
    if (proc.exited) return;
    proc.exited = true;
    mmgrab(proc.mm);
    yield* oomReap(proc.mm);
    yield* exitMm(proc.process);
    mmdrop(proc.mm);
  },
  *'file-truncate'(w, proc, op) {
    // A shared file mapping written, truncated under its mapping (unmap_mapping_range), unmapped.
    yield* onMm(proc, function* (mm) {
      const len = op.count * PAGE_SIZE;
      const file = w.machine.createFile(`p${proc.index}.file${op.id}`, { size: len });
      // In a spare slot: placed by the kernel it could fill a hole of the region.
      const at = spareOf(proc, op.id);
      const addr = yield* mmap(mm, {
        addr: at,
        len,
        prot: RW,
        flags: MAP_SHARED | MAP_FIXED,
        file,
      });
      yield* cpuWrite(mm, addr, pageOf(stepValue(op.id, 0)));
      yield* truncateFile(file, 0);
      try {
        yield* cpuRead(mm, addr, PAGE_SIZE);
      } catch (e) {
        if (!isErrno(e, 'EFAULT')) throw e; // SIGBUS past EOF
      }
      yield* munmap(mm, addr, len);
    });
  },
  *'gup-pin'(w, proc, op) {
    yield* onMm(proc, function* (mm) {
      // pin_user_pages() is called under mmap_lock (the _unlocked and _fast forms take it).
      yield* mm.mmapLock.downRead();
      let pages: Page[];
      try {
        pages = yield* getUserPages(mm, pageAddr(proc, op.page), op.count, { pin: true });
      } finally {
        mm.mmapLock.upRead();
      }
      yield* sleep(STEP_NS);
      unpinUserPages(w.machine, pages, { pin: true });
    });
  },
};

/** Runs one planned mm operation. */
export function* mmStep(w: SwarmWorld, proc: SwarmProc, op: PlannedOp): Co {
  const step = steps[op.kind as MmOp];
  if (step === undefined) throw new Error(`swarm: ${op.kind} is not an mm operation`);
  yield* step(w, proc, op);
}

/**
 * The forked child reads its copy of the step's pages (each must hold a value the parent's
 * pages may hold) and writes values of its own there (copy-on-write: neither the parent nor a
 * client of the parent may ever see them), then exits.
 */
function* childLife(w: SwarmWorld, proc: SwarmProc, op: PlannedOp, child: Mm): Co {
  // A parent killed meanwhile may have been reaped before its fork copied it (a real fork
  // fails with a fatal signal pending): its child's copy is not checked.
  if (!proc.exited) yield* readPages(w, proc, child, op, `p${proc.index}'s forked child`);
  // Its copies of the parent's device mappings (VM_DONTCOPY is not set on them).
  if (w.io !== null) yield* touchCopies(w.io, child, proc.ioMaps, 0x300 + op.id);
  for (const p of pagesOf(proc, op)) {
    try {
      yield* cpuWrite(child, p.addr, pageOf(-stepValue(op.id, p.i)));
    } catch (e) {
      if (!isRaceError(e)) throw e;
    }
  }
  yield* mmput(child);
}
