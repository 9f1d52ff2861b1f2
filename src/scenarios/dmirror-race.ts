import { installOracles } from '../check/oracles/install.ts';
import { DmirrorDevice } from '../drivers/dmirror/device.ts';
import { Dmirror } from '../drivers/dmirror/dmirror.ts';
import {
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_WRITE,
} from '../drivers/dmirror/uapi.ts';
import { join } from '../kernel/context.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Completion } from '../kernel/sync/completion.ts';
import type { Co, Task } from '../kernel/task.ts';
import { isErrno } from '../lib/errors.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../mm/constants.ts';
import { cpuRead, cpuWrite } from '../mm/cpu-access.ts';
import { mmput } from '../mm/exit.ts';
import { Machine } from '../mm/machine.ts';
import { madvise } from '../mm/madvise.ts';
import type { Mm } from '../mm/mm.ts';
import { mmdrop, mmgrab } from '../mm/mm-refs.ts';
import { mmap } from '../mm/mmap.ts';
import { mprotect } from '../mm/mprotect.ts';
import { munmap } from '../mm/munmap.ts';
import { oomReap } from '../mm/oom-reaper.ts';
import { shrinkMemory } from '../mm/reclaim.ts';
import { PageValues, pageOf } from './page-values.ts';
import type { Scenario, ScenarioParams } from './scenario.ts';

const RW = PROT_READ | PROT_WRITE;
/** Passes of the second device over the buffer with migrate=1, a page per READ. */
const DEVICE1_PASSES = 2;
const initial = (p: number) => p + 1;
const written = (p: number) => 100 + p;

/**
 * The process's final look at its pages (a reaped address space faults with SIGBUS); page p of
 * the mapping is page `first` + p of `values`.
 */
export function* checkPages(
  mm: Mm,
  base: number,
  pages: number,
  values: PageValues,
  who: string,
  first = 0,
): Co {
  for (let p = 0; p < pages; p++) {
    if (values.isUnmapped(first + p)) continue;
    try {
      values.check(who, first + p, yield* cpuRead(mm, base + p * PAGE_SIZE, PAGE_SIZE), 0);
    } catch (e) {
      if (!(mm.unstable && isErrno(e, 'EFAULT'))) throw e;
    }
  }
}

/**
 * `dmirror-race`: the HMM test device READs then WRITEs a small process buffer while a
 * thread discards a page (DONTNEED), write-protects and restores another, reclaims, and
 * unmaps the last one — optionally followed by the OOM reaper, and with device migration
 * (`migrate`). Small enough to explore thousands of schedules; the dmirror and device-memory
 * mutants are found here.
 */
export const dmirrorRaceScenario: Scenario = {
  name: 'dmirror-race',
  description:
    'dmirror READ/WRITE racing madvise, mprotect, reclaim, munmap (and the OOM reaper, and device migration)',
  params: [
    {
      name: 'pages',
      description:
        'pages in the mirrored buffer (page 0 is discarded, page 1 write-protected, the last unmapped: at least 3)',
      default: 4,
      min: 3,
      max: 4096,
    },
    {
      name: 'frames',
      description:
        "physical frames of the machine: fewer than pages and faults reclaim too; fewer than pages − 1 and a device command over the buffer never has all its pages at once, so it retries until HMM's 1 s timeout (thousands of retries, each pass swapping) and fails with EBUSY (the mutating thread reclaims at any value)",
      default: 8,
      min: 2,
      max: 1 << 20,
    },
    {
      name: 'oom',
      description: '1: the OOM reaper reaps the process at the end',
      default: 0,
      min: 0,
      max: 1,
    },
    {
      name: 'migrate',
      description:
        '1: a thread also migrates the buffer to the device and back (MIGRATE_TO_DEV, MIGRATE_TO_SYS), the CPU reads it meanwhile (faulting device pages back), and a second device (hmm_dmirror1) READs it twice, a page at a time',
      default: 0,
      min: 0,
      max: 1,
    },
  ],
  build(k: Kernel, p: ScenarioParams): void {
    buildRace(k, p.pages ?? 4, p.frames ?? 8, p.oom === 1, p.migrate === 1);
  },
};

/**
 * The threads of `migrate=1`: dmirror 0 migrates the whole buffer to its memory and back, the
 * CPU reads every page (pulling device pages back), and a second device reads the buffer (its
 * faults pull dmirror 0's pages back too).
 */
function migrationThreads(
  k: Kernel,
  machine: Machine,
  mm: Mm,
  pages: number,
  values: PageValues,
  started: { base: number; dmirror: Dmirror | null; ready: Completion },
): Task[] {
  const device1 = new DmirrorDevice(machine, 1);
  const whole = (ptr: Uint8Array) => ({
    addr: started.base,
    ptr,
    npages: pages,
    cpages: 0,
    faults: 0,
  });
  return [
    k.spawn('migrate', function* () {
      yield* started.ready.wait();
      const d = started.dmirror!;
      const buf = new Uint8Array(pages * PAGE_SIZE);
      if ((yield* d.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, whole(buf))) === 0)
        for (let p = 0; p < pages; p++)
          values.check('MIGRATE_TO_DEV read-back', p, buf, p * PAGE_SIZE);
      yield* d.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, whole(buf));
    }),
    k.spawn('touch', function* () {
      yield* started.ready.wait();
      for (let p = 0; p < pages; p++) {
        try {
          const bytes = yield* cpuRead(mm, started.base + p * PAGE_SIZE, PAGE_SIZE);
          values.check('CPU touch', p, bytes, 0);
        } catch (e) {
          // The last page may be unmapped under the read, or the whole space reaped; with
          // fewer frames than pages, device pages' backing frames may leave none (VM_FAULT_OOM).
          if (isErrno(e, 'ENOMEM')) continue;
          if (!isErrno(e, 'EFAULT') || !(values.isUnmapped(p) || mm.unstable)) throw e;
        }
      }
    }),
    k.spawn('device1', function* () {
      yield* started.ready.wait();
      const d1 = yield* Dmirror.open(device1, mm);
      // Page by page: a READ of one page can commit while a migration holds the others.
      for (let pass = 0; pass < DEVICE1_PASSES; pass++) {
        for (let p = 0; p < pages; p++) {
          const buf = new Uint8Array(PAGE_SIZE);
          const c = { ...whole(buf), addr: started.base + p * PAGE_SIZE, npages: 1 };
          if ((yield* d1.ioctl(HMM_DMIRROR_READ, c)) === 0) values.check('device1 READ', p, buf, 0);
        }
      }
      yield* d1.close();
    }),
  ];
}

function buildRace(k: Kernel, pages: number, frames: number, oom: boolean, migrate: boolean): void {
  const machine = new Machine(k, { frames });
  installOracles(k, machine);
  const device = new DmirrorDevice(machine, 0);
  const mm = machine.createMm();
  const values = new PageValues(k, pages, initial);
  const ready = new Completion('ready');
  let base = 0;
  let dmirror: Dmirror | null = null;
  const workers: Task[] = [
    k.spawn('device', function* () {
      yield* ready.wait();
      const d = dmirror!;
      const buf = new Uint8Array(pages * PAGE_SIZE);
      if (
        (yield* d.ioctl(HMM_DMIRROR_READ, {
          addr: base,
          ptr: buf,
          npages: pages,
          cpages: 0,
          faults: 0,
        })) === 0
      ) {
        for (let p = 0; p < pages; p++) values.check('device READ', p, buf, p * PAGE_SIZE);
      }
      const out = new Uint8Array(pages * PAGE_SIZE);
      for (let p = 0; p < pages; p++) {
        values.allow(p, written(p));
        out.set(pageOf(written(p)), p * PAGE_SIZE);
      }
      yield* d.ioctl(HMM_DMIRROR_WRITE, {
        addr: base,
        ptr: out,
        npages: pages,
        cpages: 0,
        faults: 0,
      });
    }),
    k.spawn('mutator', function* () {
      yield* ready.wait();
      values.allow(0, 0);
      yield* madvise(mm, base, PAGE_SIZE, MADV_DONTNEED);
      yield* mprotect(mm, base + PAGE_SIZE, PAGE_SIZE, PROT_READ);
      yield* mprotect(mm, base + PAGE_SIZE, PAGE_SIZE, RW);
      yield* shrinkMemory(machine, 2);
      values.unmap(pages - 1);
      yield* munmap(mm, base + (pages - 1) * PAGE_SIZE, PAGE_SIZE);
      if (oom) {
        mmgrab(mm);
        yield* oomReap(mm);
        mmdrop(mm);
      }
    }),
  ];
  const started = { base: 0, dmirror: null as Dmirror | null, ready };
  if (migrate) workers.push(...migrationThreads(k, machine, mm, pages, values, started));
  k.spawn('process', function* () {
    base = yield* mmap(mm, {
      len: pages * PAGE_SIZE,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    for (let p = 0; p < pages; p++) yield* cpuWrite(mm, base + p * PAGE_SIZE, pageOf(initial(p)));
    dmirror = yield* Dmirror.open(device, mm);
    started.base = base;
    started.dmirror = dmirror;
    ready.completeAll();
    for (const t of workers) yield* join(t);
    yield* checkPages(mm, base, pages, values, 'process');
    yield* dmirror.close();
    yield* mmput(mm);
  });
}
