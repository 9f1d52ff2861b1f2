import { installOracles } from '../check/oracles/install.ts';
import { registerOracle } from '../check/oracles/registry.ts';
import { svaDmaReadU32, svaDmaWriteU32 } from '../drivers/iommu/ats.ts';
import { iommuSvaBindDevice, iommuSvaUnbindDevice, type SvaBond } from '../drivers/iommu/sva.ts';
import { delay, join, sleep } from '../kernel/context.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Completion } from '../kernel/sync/completion.ts';
import type { Co, Task } from '../kernel/task.ts';
import { isErrno } from '../lib/errors.ts';
import {
  hex,
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
import { mmap } from '../mm/mmap.ts';
import { mprotect } from '../mm/mprotect.ts';
import { mremap } from '../mm/mremap.ts';
import { munmap } from '../mm/munmap.ts';
import { shrinkMemory } from '../mm/reclaim.ts';
import { paramOf, type Scenario, type ScenarioParams } from './scenario.ts';

/** Virtual time between two accesses of a CPU thread or a DMA engine, ns. */
const ACCESS_NS = 400;
/** Virtual time the mutating threads wait between two operations, ns. */
const MUTATOR_NS = 1500;
/** The word of page `page` the process itself writes (word 0). */
const processWord = (page: number) => 0x1000 + page;

/** The operations of the `ops` bitmask. */
const OP_MPROTECT = 1;
const OP_FORK = 2;
const OP_RECLAIM = 4;
const OP_COMPACT = 8;
const OP_MREMAP = 16;
const OP_DISCARD = 32;

const param = (p: ScenarioParams, name: string) => paramOf('sva', p, name);

/**
 * `sva`: a device bound to a process with IOMMU shared virtual addressing (its DMA walks the
 * CPU page table and caches translations in an IOTLB, flushed only by the secondary-TLB hook),
 * while the process's own threads use their CPU TLBs and two kernel-side threads change the
 * mappings underneath both.
 *
 * Tasks: `process` maps `pages` pages, writes word 0 of each, binds the device, lets the others
 * go, joins them, reads every surviving page back, unbinds and exits. `cpu<i>` and `dma<e>`
 * make `accesses` accesses each at PRNG-chosen pages, alternating reads and writes of a word of
 * their own (reads check the value last written). `mutator` runs `rounds` of mprotect(READ)
 * over the first half and back, and of fork with the child exiting (COW); at the end it moves
 * the last page elsewhere with mremap and unmaps it, once `discard0` and `discard1` have both
 * discarded it with MADV_DONTNEED at the same moment. `kswapd` runs `rounds` of reclaim of half
 * the pages and of compaction (every LRU page migrated). `ops` selects the operations.
 *
 * Data are checked end to end: reads see the thread's last write, and at quiescence every page
 * still mapped holds each thread's last successful write (a write through a stale translation
 * lands in a frame the process no longer maps). The last page is not checked: it moves.
 */
export const svaScenario: Scenario = {
  name: 'sva',
  description:
    'an SVA device (IOTLB, page requests) and CPU threads (TLBs) use a process while mprotect, fork, reclaim, migration, madvise, mremap and munmap change it',
  params: [
    { name: 'pages', description: 'pages mapped and used', default: 4, min: 2, max: 4096 },
    { name: 'cpus', description: 'CPU threads of the process', default: 1, min: 0, max: 16 },
    {
      name: 'engines',
      description: 'DMA engines of the device (threads sharing its IOTLB)',
      default: 1,
      min: 0,
      max: 16,
    },
    {
      name: 'accesses',
      description: 'accesses per CPU thread and per DMA engine (alternately read and write)',
      default: 10,
      min: 0,
      max: 100_000,
    },
    {
      name: 'rounds',
      description: 'rounds of the mutator (mprotect, fork) and of kswapd (reclaim, compaction)',
      default: 1,
      min: 0,
      max: 1000,
    },
    {
      name: 'ops',
      description:
        'operations, a bitmask: 1 mprotect, 2 fork with COW, 4 reclaim, 8 compaction (migration), 16 mremap of the last page before its munmap (the munmap happens at any value), 32 two threads discarding the last page with MADV_DONTNEED at once',
      default: 63,
      min: 0,
      max: 63,
    },
    {
      name: 'frames',
      description:
        'physical frames of the machine: fewer than the pages in use and faults reclaim too; so few that reclaim finds nothing to free and an access fails (ENOMEM; the model has no OOM killer)',
      default: 16,
      min: 4,
      max: 1 << 20,
    },
  ],
  build(k: Kernel, p: ScenarioParams): void {
    buildSva(k, {
      pages: param(p, 'pages'),
      cpus: param(p, 'cpus'),
      engines: param(p, 'engines'),
      accesses: param(p, 'accesses'),
      rounds: param(p, 'rounds'),
      ops: param(p, 'ops'),
      frames: param(p, 'frames'),
    });
  },
};

interface SvaParams {
  readonly pages: number;
  readonly cpus: number;
  readonly engines: number;
  readonly accesses: number;
  readonly rounds: number;
  readonly ops: number;
  readonly frames: number;
}

/** One thread's way to read and write a word: false/null when the access failed. */
interface Accessor {
  readU32(addr: number): Co<number | null>;
  writeU32(addr: number, value: number): Co<boolean>;
}

/**
 * Errors that fail one CPU access: no mapping or no right (EFAULT, SIGSEGV), or no frame even
 * after reclaim (ENOMEM: the kernel would OOM-kill; the model has no OOM killer).
 */
const failsAccess = (e: unknown) => isErrno(e, 'EFAULT') || isErrno(e, 'ENOMEM');

/** A CPU thread's accesses: a fault that cannot be resolved is a failed access. */
function cpuAccessor(mm: Mm): Accessor {
  return {
    *readU32(addr) {
      try {
        return yield* cpuReadU32(mm, addr);
      } catch (e) {
        if (failsAccess(e)) return null;
        throw e;
      }
    },
    *writeU32(addr, value) {
      try {
        yield* cpuWriteU32(mm, addr, value);
        return true;
      } catch (e) {
        if (failsAccess(e)) return false;
        throw e;
      }
    },
  };
}

/** A DMA engine's accesses through the bond. */
function dmaAccessor(bond: () => SvaBond): Accessor {
  return {
    readU32: (addr) => svaDmaReadU32(bond(), addr),
    writeU32: (addr, value) => svaDmaWriteU32(bond(), addr, value),
  };
}

function buildSva(k: Kernel, p: SvaParams): void {
  const machine = new Machine(k, { frames: p.frames });
  installOracles(k, machine);
  const mm = machine.createMm();
  const ready = new Completion('ready');
  let base = 0;
  let bond: SvaBond | null = null;
  let dataChecks = 0;
  const users = p.cpus + p.engines;
  /** last[u][page]: the value user u (CPU threads, then engines) last wrote to its word. */
  const last = Array.from({ length: users }, () => new Array<number>(p.pages).fill(0));
  const image: number[][] = [];
  const lastPage = p.pages - 1;
  registerOracle(k, {
    name: 'data',
    description: "reads see the thread's own writes; the process sees every write at the end",
    rules: ['data'],
    checks: () => dataChecks,
  });

  const workers: Task[] = [];
  const user = (u: number, name: string, io: Accessor) =>
    k.spawn(name, function* () {
      yield* ready.wait();
      const mine = last[u]!;
      for (let i = 0; i < p.accesses; i++) {
        yield* delay(ACCESS_NS);
        const page = k.prng.below(p.pages);
        const addr = base + page * PAGE_SIZE + 4 * (u + 1);
        if (i % 2 === 1) {
          const value = (u + 1) * 100_000 + i;
          if ((yield* io.writeU32(addr, value)) && page !== lastPage) mine[page] = value;
          continue;
        }
        const got = yield* io.readU32(addr);
        if (got === null || page === lastPage) continue;
        dataChecks++;
        if (got !== mine[page])
          k.bug(
            'data',
            `${name} read ${got} at ${hex(addr)} (page ${page}) but last wrote ${mine[page]}`,
          );
      }
    });
  for (let c = 0; c < p.cpus; c++) workers.push(user(c, `cpu${c}`, cpuAccessor(mm)));
  for (let e = 0; e < p.engines; e++)
    workers.push(
      user(
        p.cpus + e,
        `dma${e}`,
        dmaAccessor(() => bond!),
      ),
    );

  const half = Math.max(1, p.pages >> 1);
  const discarders: Task[] = [];
  if (p.ops & OP_DISCARD)
    for (const name of ['discard0', 'discard1'])
      discarders.push(
        k.spawn(name, function* () {
          yield* ready.wait();
          yield* sleep(MUTATOR_NS);
          yield* madvise(mm, base + lastPage * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED);
        }),
      );
  workers.push(
    k.spawn('mutator', function* () {
      yield* ready.wait();
      for (let r = 0; r < p.rounds; r++) {
        if (p.ops & OP_MPROTECT) {
          yield* sleep(MUTATOR_NS);
          yield* mprotect(mm, base, half * PAGE_SIZE, PROT_READ);
          yield* sleep(MUTATOR_NS);
          yield* mprotect(mm, base, half * PAGE_SIZE, PROT_READ | PROT_WRITE);
        }
        if (p.ops & OP_FORK) {
          yield* sleep(MUTATOR_NS);
          const child = yield* fork(mm);
          yield* sleep(MUTATOR_NS);
          yield* mmput(child);
        }
      }
      for (const t of discarders) yield* join(t);
      yield* sleep(MUTATOR_NS);
      let at = base + lastPage * PAGE_SIZE;
      if (p.ops & OP_MREMAP) {
        // A fixed target below the mapping: the old address is unmapped by the move.
        const target = base - 16 * PAGE_SIZE;
        at = yield* mremap(mm, at, PAGE_SIZE, PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
        yield* sleep(MUTATOR_NS);
      }
      yield* munmap(mm, at, PAGE_SIZE);
    }),
  );
  workers.push(
    k.spawn('kswapd', function* () {
      yield* ready.wait();
      for (let r = 0; r < p.rounds; r++) {
        if (p.ops & OP_RECLAIM) {
          yield* sleep(MUTATOR_NS);
          yield* shrinkMemory(machine, half);
        }
        if (p.ops & OP_COMPACT) {
          yield* sleep(MUTATOR_NS);
          // kcompactd: every page on the LRU, in LRU order, moves to a new frame.
          for (const page of [...machine.phys.lru]) yield* migratePage(machine, page);
        }
      }
    }),
  );

  k.spawn('process', function* () {
    base = yield* mmap(mm, {
      len: p.pages * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    for (let i = 0; i < p.pages; i++) yield* cpuWriteU32(mm, base + i * PAGE_SIZE, processWord(i));
    bond = yield* iommuSvaBindDevice('sva0', mm);
    ready.completeAll();
    for (const t of workers) yield* join(t);
    for (let i = 0; i < lastPage; i++) {
      const words: number[] = [];
      for (let w = 0; w <= users; w++)
        words.push(yield* cpuReadU32(mm, base + i * PAGE_SIZE + 4 * w));
      image.push(words);
    }
    yield* iommuSvaUnbindDevice(bond);
    yield* mmput(mm);
  });
  k.onQuiescence(() => {
    if (image.length !== lastPage) k.bug('data', 'the process never read its memory back');
    for (let i = 0; i < lastPage; i++) {
      const words = image[i]!;
      const want = [processWord(i), ...last.map((l) => l[i]!)];
      for (let w = 0; w < want.length; w++) {
        dataChecks++;
        if (words[w] !== want[w])
          k.bug(
            'data',
            `page ${i} word ${w} holds ${words[w]} at the end, expected ${want[w]} (${w === 0 ? 'written by the process' : `the last write of ${w <= p.cpus ? `cpu${w - 1}` : `dma${w - 1 - p.cpus}`}`})`,
          );
      }
    }
  });
}
