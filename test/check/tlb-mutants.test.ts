// The CPU TLB mutants are found by exploration of small worlds, and the correct code is clean
// under the same budget. Strategy, seed and budget are stated per test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { type Co, explore, type Kernel } from '../../src/index.ts';
import { join } from '../../src/kernel/context.ts';
import { Completion } from '../../src/kernel/sync/completion.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { Machine } from '../../src/mm/machine.ts';
import { madvise } from '../../src/mm/madvise.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mprotect } from '../../src/mm/mprotect.ts';
import { shrinkMemory } from '../../src/mm/reclaim.ts';

const RW = PROT_READ | PROT_WRITE;

/**
 * A process with `pages` pages whose `cpu` thread writes them `writes` times, while the threads
 * `others` make return their operations on the range.
 */
function tlbWorld(
  pages: number,
  writes: number,
  others: Record<string, (machine: Machine, mm: Mm, base: number) => Co>,
) {
  return (k: Kernel): void => {
    const machine = new Machine(k, { frames: 8 });
    installOracles(k, machine);
    const mm = machine.createMm();
    const ready = new Completion('ready');
    let base = 0;
    const tasks = Object.entries(others).map(([name, fn]) =>
      k.spawn(name, function* () {
        yield* ready.wait();
        yield* fn(machine, mm, base);
      }),
    );
    k.spawn('cpu', function* () {
      base = yield* mmap(mm, {
        len: pages * PAGE_SIZE,
        prot: RW,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      ready.completeAll();
      for (let i = 0; i < writes; i++) {
        try {
          yield* cpuWriteU32(mm, base + (i % pages) * PAGE_SIZE, i);
        } catch {
          // A write after mprotect(PROT_READ) faults: the thread goes on.
        }
      }
      for (const t of tasks) yield* join(t);
      yield* mmput(mm);
    });
  };
}

const reclaimVsMprotect = tlbWorld(1, 6, {
  *kswapd(machine) {
    for (let i = 0; i < 3; i++) yield* shrinkMemory(machine, 1);
  },
  *mutator(_machine, mm, base) {
    yield* mprotect(mm, base, PAGE_SIZE, PROT_READ);
  },
});

test('mm.mprotect-skips-batched-flush: mprotect returns while a CPU holds an entry reclaim cleared (random, seed 1, ≤ 5,000 runs); clean without it', () => {
  const found = explore(reclaimVsMprotect, {
    strategy: 'random',
    seed: 1,
    runs: 5000,
    mutants: ['mm.mprotect-skips-batched-flush'],
  });
  assert.equal(found.failure?.rule, 'tlb-revocation', found.failure?.bug.message);
  assert.match(
    found.failure.bug.message,
    /mprotect returns while the TLB of cpu\d+ \(cpu\) still caches/,
  );
  const clean = explore(reclaimVsMprotect, { strategy: 'random', seed: 1, runs: 5000 });
  assert.equal(clean.failure, null, clean.failure?.bug.message);
});

const racingDontneed = tlbWorld(2, 4, {
  *a(_machine, mm, base) {
    yield* madvise(mm, base, 2 * PAGE_SIZE, MADV_DONTNEED);
  },
  *b(_machine, mm, base) {
    yield* madvise(mm, base, 2 * PAGE_SIZE, MADV_DONTNEED);
  },
});

test('mm.gather-ignores-nested: one of two racing MADV_DONTNEED returns while a CPU holds an entry the other cleared (random, seed 1, ≤ 2,000 runs); clean without it', () => {
  const found = explore(racingDontneed, {
    strategy: 'random',
    seed: 1,
    runs: 2000,
    mutants: ['mm.gather-ignores-nested'],
  });
  assert.equal(found.failure?.rule, 'tlb-revocation', found.failure?.bug.message);
  assert.match(found.failure.bug.message, /madvise returns while the TLB of cpu\d+ \(cpu\)/);
  const clean = explore(racingDontneed, { strategy: 'random', seed: 1, runs: 2000 });
  assert.equal(clean.failure, null, clean.failure?.bug.message);
});
