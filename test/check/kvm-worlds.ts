// Worlds for the mm explorer tests: a process whose memory a KVM-style mirror follows while
// another thread mutates it.

import { installOracles } from '../../src/check/oracles/install.ts';
import { type Co, Completion, type Kernel } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { shrinkMemory } from '../../src/mm/reclaim.ts';
import { mutations as intervalMutations } from './interval-worlds.ts';
import { KvmMirror } from './kvm-mirror.ts';

const PAGES = 3;

/** What the racing thread does to the mirrored range. */
type Mutation = (machine: Machine, mm: Mm, base: number) => Co;

/** munmap, reclaim and exit, plus the mprotect, madvise, fork and migration of the interval worlds. */
export const mutations: Record<string, Mutation> = {
  *munmap(_m, mm, base) {
    yield* munmap(mm, base + PAGE_SIZE, PAGE_SIZE);
  },
  mprotect: intervalMutations.mprotect!,
  madvise: intervalMutations.madvise!,
  fork: intervalMutations.fork!,
  *reclaim(m) {
    yield* shrinkMemory(m, 2);
  },
  migration: intervalMutations.migration!,
  *exit(_m, mm) {
    yield* mmput(mm);
  },
};

/** A process whose memory a KVM-style mirror follows while another thread mutates it. */
export function kvmWorld(mutation: Mutation, exits = true) {
  return (k: Kernel): void => {
    const machine = new Machine(k, { frames: 8 });
    installOracles(k, machine);
    const mm = machine.createMm();
    const kvm = new KvmMirror(k, mm);
    const ready = new Completion('ready');
    let base = 0;
    let exited = false;
    k.spawn('vcpu', function* () {
      base = yield* mmap(mm, {
        len: PAGES * PAGE_SIZE,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      // Page 0 is read first (zero page), so its write is a COW copy (wp_page_copy).
      yield* cpuReadU32(mm, base);
      for (let i = 0; i < PAGES; i++) yield* cpuWriteU32(mm, base + i * PAGE_SIZE, i);
      yield* kvm.register();
      ready.complete();
      for (let i = 0; i < 2 * PAGES; i++)
        yield* kvm.touch(base + (i % PAGES) * PAGE_SIZE, i % 2 === 1);
      yield* kvm.unregister();
      ready.complete();
    });
    k.spawn('mutator', function* () {
      yield* ready.wait();
      yield* mutation(machine, mm, base);
      if (mutation === mutations.exit) exited = true;
      yield* ready.wait();
      if (exits && !exited) yield* mmput(mm);
    });
  };
}
