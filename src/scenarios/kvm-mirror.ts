import { installOracles } from '../check/oracles/install.ts';
import { registerOracle } from '../check/oracles/registry.ts';
import { KvmMirror } from '../drivers/kvm/kvm-mirror.ts';
import { delay, join, sleep } from '../kernel/context.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Completion } from '../kernel/sync/completion.ts';
import type { Task } from '../kernel/task.ts';
import {
  hex,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../mm/cpu-access.ts';
import { mmput } from '../mm/exit.ts';
import { Machine } from '../mm/machine.ts';
import { mmap } from '../mm/mmap.ts';
import { mprotect } from '../mm/mprotect.ts';
import { munmap } from '../mm/munmap.ts';
import { shrinkMemory } from '../mm/reclaim.ts';
import { paramOf, type Scenario, type ScenarioParams } from './scenario.ts';

/** Virtual time a vCPU computes between two guest accesses, ns. */
const GUEST_NS = 400;
/** Virtual time the mutating thread waits between two operations, ns. */
const MUTATOR_NS = 1500;
/** The word of a page the process writes; vCPU v owns word v + 1. */
const cpuWord = (page: number) => 0x1000 + page;

const param = (p: ScenarioParams, name: string) => paramOf('kvm-mirror', p, name);

/**
 * `kvm-mirror`: a process whose anonymous memory a KVM-style VM mirrors (a classic MMU
 * notifier with an in-progress count and a sequence, see drivers/kvm) while one of its threads
 * write-protects, reclaims and finally unmaps parts of it.
 *
 * Tasks: `process` maps `pages` pages, writes a word in each, registers the VM, lets the others
 * go, then joins them, reads the surviving pages back and exits. `vcpu<i>` makes `touches`
 * guest accesses at PRNG-chosen pages, alternating reads and writes of its own word in the page
 * (reads check the value it last wrote). `mutator` runs `rounds` of mprotect(READ) over the
 * first half then back to RW, and reclaim of half the pages; then it unmaps the last page.
 *
 * Data are checked end to end: every guest read sees the vCPU's last write, and at quiescence
 * the process's final view of every page still mapped holds its own word and each vCPU's last
 * successful write (a write through a stale SPTE lands in a frame the process no longer maps).
 */
export const kvmMirrorScenario: Scenario = {
  name: 'kvm-mirror',
  description:
    'a KVM-style VM mirrors a process while a thread mprotects, reclaims and munmaps its memory',
  params: [
    { name: 'pages', description: 'pages mapped and mirrored', default: 4, min: 1, max: 4096 },
    {
      name: 'vcpus',
      description: 'vCPU threads making guest accesses',
      default: 2,
      min: 1,
      max: 16,
    },
    {
      name: 'touches',
      description: 'guest accesses per vCPU (alternately read and write)',
      default: 12,
      min: 0,
      max: 100_000,
    },
    {
      name: 'rounds',
      description:
        'mprotect/reclaim rounds of the mutating thread (each write-protects the first half and reclaims half the pages); it unmaps the last page at any value',
      default: 1,
      min: 0,
      max: 1000,
    },
    {
      name: 'frames',
      description:
        'physical frames of the machine: fewer than pages and faults reclaim too (the mutating thread reclaims at any value with rounds ≥ 1)',
      default: 16,
      min: 2,
      max: 1 << 20,
    },
  ],
  build(k: Kernel, p: ScenarioParams): void {
    buildKvmMirror(k, {
      pages: param(p, 'pages'),
      vcpus: param(p, 'vcpus'),
      touches: param(p, 'touches'),
      rounds: param(p, 'rounds'),
      frames: param(p, 'frames'),
    });
  },
};

interface KvmParams {
  readonly pages: number;
  readonly vcpus: number;
  readonly touches: number;
  readonly rounds: number;
  readonly frames: number;
}

function buildKvmMirror(k: Kernel, p: KvmParams): void {
  const machine = new Machine(k, { frames: p.frames });
  installOracles(k, machine);
  const mm = machine.createMm();
  const kvm = new KvmMirror(k, mm);
  const ready = new Completion('ready');
  let base = 0;
  let dataChecks = 0;
  /** last[v][page]: the value vCPU v last wrote to its word of `page` (0: none). */
  const last = Array.from({ length: p.vcpus }, () => new Array<number>(p.pages).fill(0));
  /** Pages unmapped by the mutator (their contents are gone). */
  const unmapped = new Set<number>();
  /** The process's final view: image[page][word], read after every other thread finished. */
  const image: (number[] | null)[] = [];
  registerOracle(k, {
    name: 'data',
    description: "guest reads see the vCPU's writes; the process sees them at the end",
    rules: ['data'],
    checks: () => dataChecks,
  });

  const workers: Task[] = [];
  for (let v = 0; v < p.vcpus; v++) {
    workers.push(
      k.spawn(`vcpu${v}`, function* () {
        yield* ready.wait();
        const mine = last[v]!;
        for (let i = 0; i < p.touches; i++) {
          yield* delay(GUEST_NS);
          const page = k.prng.below(p.pages);
          const addr = base + page * PAGE_SIZE + 4 * (v + 1);
          if (i % 2 === 1) {
            const value = (v + 1) * 100_000 + i;
            if (yield* kvm.writeU32(addr, value)) mine[page] = value;
            continue;
          }
          const got = yield* kvm.readU32(addr);
          if (got === null) continue;
          dataChecks++;
          if (got !== mine[page])
            k.bug(
              'data',
              `vcpu${v} read ${got} at ${hex(addr)} (page ${page}) but last wrote ${mine[page]}`,
            );
        }
      }),
    );
  }
  workers.push(
    k.spawn('mutator', function* () {
      yield* ready.wait();
      const half = Math.max(1, p.pages >> 1);
      for (let r = 0; r < p.rounds; r++) {
        yield* sleep(MUTATOR_NS);
        yield* mprotect(mm, base, half * PAGE_SIZE, PROT_READ);
        yield* sleep(MUTATOR_NS);
        yield* mprotect(mm, base, half * PAGE_SIZE, PROT_READ | PROT_WRITE);
        yield* sleep(MUTATOR_NS);
        yield* shrinkMemory(machine, half);
      }
      yield* sleep(MUTATOR_NS);
      const lastPage = p.pages - 1;
      unmapped.add(lastPage);
      yield* munmap(mm, base + lastPage * PAGE_SIZE, PAGE_SIZE);
    }),
  );
  k.spawn('process', function* () {
    base = yield* mmap(mm, {
      len: p.pages * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    for (let i = 0; i < p.pages; i++) yield* cpuWriteU32(mm, base + i * PAGE_SIZE, cpuWord(i));
    yield* kvm.register();
    ready.completeAll();
    for (const t of workers) yield* join(t);
    for (let i = 0; i < p.pages; i++) {
      if (unmapped.has(i)) {
        image.push(null);
        continue;
      }
      const words: number[] = [];
      for (let w = 0; w <= p.vcpus; w++)
        words.push(yield* cpuReadU32(mm, base + i * PAGE_SIZE + 4 * w));
      image.push(words);
    }
    yield* kvm.unregister();
    yield* mmput(mm);
  });
  k.onQuiescence(() => {
    for (let i = 0; i < p.pages; i++) {
      const words = image[i];
      if (words === undefined) k.bug('data', 'the process never read its memory back');
      if (words === null) continue;
      const want = [cpuWord(i), ...last.map((l) => l[i]!)];
      for (let w = 0; w < want.length; w++) {
        dataChecks++;
        if (words[w] !== want[w])
          k.bug(
            'data',
            `page ${i} word ${w} holds ${words[w]} at the end, expected ${want[w]} (${w === 0 ? 'written by the process' : `vcpu${w - 1}'s last write`})`,
          );
      }
    }
  });
}
