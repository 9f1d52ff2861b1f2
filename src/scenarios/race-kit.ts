// What the small race worlds share (interval-mirror, and the KVM and interval explorer tests):
// the mm operations raced against a mirror, and a world's machine, process memory and mutator.

import { installOracles } from '../check/oracles/install.ts';
import { join } from '../kernel/context.ts';
import { type Kernel, kernel } from '../kernel/kernel.ts';
import { Completion } from '../kernel/sync/completion.ts';
import type { Co } from '../kernel/task.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../mm/cpu-access.ts';
import { mmput } from '../mm/exit.ts';
import { fork } from '../mm/fork.ts';
import { Machine } from '../mm/machine.ts';
import { madvise } from '../mm/madvise.ts';
import { migratePage } from '../mm/migrate.ts';
import type { Mm } from '../mm/mm.ts';
import { mmdrop, mmgrab } from '../mm/mm-refs.ts';
import { mmap } from '../mm/mmap.ts';
import { mprotect } from '../mm/mprotect.ts';
import { mremap } from '../mm/mremap.ts';
import { munmap } from '../mm/munmap.ts';
import { oomReap } from '../mm/oom-reaper.ts';
import { shrinkMemory } from '../mm/reclaim.ts';

/** How many pages the process maps and the mirror follows. */
export const PAGES = 3;

/** What the racing thread does to the mirrored range. */
export type Mutation = (machine: Machine, mm: Mm, base: number) => Co;

/** The mm operations raced against a mirror. `exit` and `exitUnderReclaim` end the process itself. */
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
  *mremap(_m, mm, base) {
    // Moves the middle page away (a fixed target below the mapping): its old range is unmapped.
    const target = base - 16 * PAGE_SIZE;
    yield* mremap(
      mm,
      base + PAGE_SIZE,
      PAGE_SIZE,
      PAGE_SIZE,
      MREMAP_MAYMOVE | MREMAP_FIXED,
      target,
    );
  },
  *exitUnderReclaim(m, mm) {
    // kswapd shrinks the process's memory while its last user exits.
    const kswapd = kernel().spawn('kswapd', () => shrinkMemory(m, 2));
    yield* mmput(mm);
    yield* join(kswapd);
  },
};

/** The mutations that end the process (its last mmput). */
const EXITS: readonly Mutation[] = [mutations.exit!, mutations.exitUnderReclaim!];

/** One world's machine (8 frames, oracles installed), process and `ready` completion. */
export interface World {
  machine: Machine;
  mm: Mm;
  ready: Completion;
  /** Where the process mapped its pages (0 until `mapPopulated` has run). */
  base: number;
}

export function newWorld(k: Kernel): World {
  const machine = new Machine(k, { frames: 8 });
  installOracles(k, machine);
  return { machine, mm: machine.createMm(), ready: new Completion('ready'), base: 0 };
}

/**
 * Maps PAGES anonymous pages at `w.base` and fills them, page i with `first + i`. Page 0 is read
 * first (zero page), so its write is a COW copy (wp_page_copy) and every world sees COW faults.
 */
export function* mapPopulated(w: World, first: number): Co {
  w.base = yield* mmap(w.mm, {
    len: PAGES * PAGE_SIZE,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS,
  });
  yield* cpuReadU32(w.mm, w.base);
  for (let i = 0; i < PAGES; i++) yield* cpuWriteU32(w.mm, w.base + i * PAGE_SIZE, first + i);
}

/** The mutator thread: once `ready`, runs `mutation`, then `after` (told whether it was exit). */
export function spawnMutator(
  k: Kernel,
  w: World,
  mutation: Mutation,
  after: (exited: boolean) => Co,
): void {
  k.spawn('mutator', function* () {
    yield* w.ready.wait();
    yield* mutation(w.machine, w.mm, w.base);
    yield* after(EXITS.includes(mutation));
  });
}
