// Worlds for the interval-notifier explorer tests: a process's memory mirrored by an
// interval mirror (inserted and removed while the world runs) and a thread that mutates it.

import { installOracles } from '../../src/check/oracles/install.ts';
import { type Co, Completion, type Kernel } from '../../src/index.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { fork } from '../../src/mm/fork.ts';
import { Machine } from '../../src/mm/machine.ts';
import { madvise } from '../../src/mm/madvise.ts';
import { migratePage } from '../../src/mm/migrate.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmdrop, mmgetNotZero, mmgrab } from '../../src/mm/mm-refs.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mprotect } from '../../src/mm/mprotect.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { oomReap } from '../../src/mm/oom-reaper.ts';
import { shrinkMemory } from '../../src/mm/reclaim.ts';
import { IntervalMirror } from './interval-mirror.ts';

export const PAGES = 3;

export type Mutation = (machine: Machine, mm: Mm, base: number) => Co;

/** The mm operations raced against the mirror. `exit` ends the process itself. */
export const mutations: Record<string, Mutation> = {
  *munmap(_m, mm, base) {
    yield* munmap(mm, base + PAGE_SIZE, PAGE_SIZE);
  },
  *mprotect(_m, mm, base) {
    yield* mprotect(mm, base, PAGES * PAGE_SIZE, PROT_READ);
    yield* mprotect(mm, base, PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE);
  },
  *madvise(_m, mm, base) {
    yield* madvise(mm, base, PAGES * PAGE_SIZE, MADV_DONTNEED);
  },
  *fork(_m, mm, base) {
    const child = yield* fork(mm);
    yield* cpuWriteU32(mm, base, 42);
    yield* mmput(child);
  },
  *reclaim(m) {
    yield* shrinkMemory(m, 2);
  },
  *migration(m, mm, base) {
    const page = mm.pte(base + PAGE_SIZE)?.page;
    if (page) yield* migratePage(m, page);
  },
  *oomReaper(_m, mm) {
    mmgrab(mm);
    yield* oomReap(mm);
    mmdrop(mm);
  },
  *exit(_m, mm) {
    yield* mmput(mm);
  },
};

/** Pages are read then written (zero page, then COW), so every world also sees COW faults. */
function* populate(mm: Mm, base: number): Co {
  yield* cpuReadU32(mm, base);
  for (let i = 0; i < PAGES; i++) yield* cpuWriteU32(mm, base + i * PAGE_SIZE, i + 1);
}

/** The process, its mirror (inserted after setup, racing the mutation) and the mutator. */
export function intervalWorld(mutation: Mutation) {
  return (k: Kernel): void => {
    const machine = new Machine(k, { frames: 8 });
    installOracles(k, machine);
    const mm = machine.createMm();
    const mirror = new IntervalMirror(k, mm, 'mirror');
    const ready = new Completion('ready');
    const done = new Completion('done');
    let base = 0;
    let exitedEarly = false;
    k.spawn('process', function* () {
      base = yield* mmap(mm, {
        len: PAGES * PAGE_SIZE,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      yield* populate(mm, base);
      mmgrab(mm); // the device's reference, taken when it is opened
      ready.completeAll();
      yield* done.wait();
      yield* done.wait();
      if (!exitedEarly) yield* mmput(mm);
    });
    k.spawn('device', function* () {
      yield* ready.wait();
      // Inserting needs an mm_users reference, as the driver's caller holds one.
      if (mmgetNotZero(mm)) {
        yield* mirror.insert(base, PAGES * PAGE_SIZE);
        yield* mmput(mm);
        for (let i = 0; i < PAGES; i++) yield* mirror.touch(base + i * PAGE_SIZE, i === 1);
        yield* mirror.remove();
      }
      mmdrop(mm);
      done.complete();
    });
    k.spawn('mutator', function* () {
      yield* ready.wait();
      yield* mutation(machine, mm, base);
      if (mutation === mutations.exit) exitedEarly = true;
      done.complete();
    });
  };
}
