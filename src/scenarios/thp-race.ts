/**
 * `thp-race`: one transparent huge page (a 2 MiB-aligned MADV_HUGEPAGE PMD) mirrored by the HMM
 * test device while threads fault in, write-protect, discard, reclaim, fork and (with
 * `migrate`) move it to device memory and back: each path that splits the PMD, or maps one,
 * races the others and the device's faults. Small in operations, so PCT explores it deeply.
 */
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
import { HPAGE_PMD_NR, MADV_DONTNEED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/constants.ts';
import { cpuRead, cpuWrite } from '../mm/cpu-access.ts';
import { mmput } from '../mm/exit.ts';
import { fork } from '../mm/fork.ts';
import { Machine } from '../mm/machine.ts';
import { madvise } from '../mm/madvise.ts';
import type { Mm } from '../mm/mm.ts';
import { mprotect } from '../mm/mprotect.ts';
import { shrinkMemory } from '../mm/reclaim.ts';
import { mapThpRegion } from './default-thp.ts';
import { checkPages } from './dmirror-race.ts';
import { PageValues, pageOf } from './page-values.ts';
import { paramOf, type Scenario, type ScenarioParams } from './scenario.ts';

const RW = PROT_READ | PROT_WRITE;
const N = HPAGE_PMD_NR;
/** Pages the device writes at the start of the PMD (one dmirror fault chunk). */
const DEVICE_WRITE_PAGES = 32;
/** The pages each thread works on: apart, so each split is of a different part. */
const CPU_PAGE = 5;
const PROTECTED = { first: 8, count: 8 };
const DISCARDED = 100;
const CHILD_PAGE = 200;
/** Values of the device's and the CPU's writes. */
const DEVICE_VALUE = 1_000;
const CPU_VALUE = 2_000;

const param = (p: ScenarioParams, name: string) => paramOf('thp-race', p, name);

export const thpRaceScenario: Scenario = {
  name: 'thp-race',
  description:
    'one THP (or the huge zero page) mirrored by dmirror while threads write, mprotect part of it, discard a page, reclaim, fork (and migrate it to device memory and back)',
  params: [
    {
      name: 'zero',
      description:
        '1: the process only reads the PMD first, so it starts as the huge zero page; 0: it writes every page, so it starts as a THP holding their values',
      default: 0,
      min: 0,
      max: 1,
    },
    {
      name: 'frames',
      description:
        'physical frames of the machine; below about 1,100 the THP (512 frames at once) or its copies may not fit, and faults fall back to small pages or reclaim; at least 600, as a device command over the PMD needs its 512 pages present at once',
      default: 2048,
      min: 600,
      max: 1 << 20,
    },
    {
      name: 'migrate',
      description:
        '1: a thread also migrates the PMD to the device (a device THP) and back, while the CPU reads a page of it',
      default: 1,
      min: 0,
      max: 1,
    },
  ],
  build(k: Kernel, p: ScenarioParams): void {
    buildThpRace(k, param(p, 'zero') === 1, param(p, 'frames'), param(p, 'migrate') === 1);
  },
};

function buildThpRace(k: Kernel, zero: boolean, frames: number, migrate: boolean): void {
  const machine = new Machine(k, { frames });
  installOracles(k, machine);
  const device = new DmirrorDevice(machine, 0);
  const mm = machine.createMm();
  const initial = (p: number) => (zero ? 0 : p + 1);
  const values = new PageValues(k, N, initial);
  const ready = new Completion('ready');
  const world = { base: 0, dmirror: null as Dmirror | null };
  const at = (p: number) => world.base + p * PAGE_SIZE;
  const cmd = (first: number, buf: Uint8Array) => ({
    addr: at(first),
    ptr: buf,
    npages: buf.length / PAGE_SIZE,
    cpages: 0,
    faults: 0,
  });
  const thread = (name: string, body: () => Co) =>
    k.spawn(name, function* () {
      yield* ready.wait();
      yield* body();
    });
  const workers: Task[] = [
    thread('device', function* () {
      const d = world.dmirror!;
      const buf = new Uint8Array(N * PAGE_SIZE);
      if ((yield* d.ioctl(HMM_DMIRROR_READ, cmd(0, buf))) === 0)
        for (let p = 0; p < N; p++) values.check('device READ', p, buf, p * PAGE_SIZE);
      for (let p = 0; p < DEVICE_WRITE_PAGES; p++) values.allow(p, DEVICE_VALUE + p);
      const out = new Uint8Array(DEVICE_WRITE_PAGES * PAGE_SIZE);
      for (let p = 0; p < DEVICE_WRITE_PAGES; p++) out.set(pageOf(DEVICE_VALUE + p), p * PAGE_SIZE);
      yield* d.ioctl(HMM_DMIRROR_WRITE, cmd(0, out));
    }),
    thread('cpu', function* () {
      values.allow(CPU_PAGE, CPU_VALUE);
      yield* tolerateOom(() => cpuWrite(mm, at(CPU_PAGE), pageOf(CPU_VALUE)));
      const far = N - 2;
      yield* tolerateOom(function* () {
        values.check('CPU read', far, yield* cpuRead(mm, at(far), PAGE_SIZE), 0);
      });
    }),
    thread('mutator', function* () {
      yield* mprotect(mm, at(PROTECTED.first), PROTECTED.count * PAGE_SIZE, PROT_READ);
      values.allow(DISCARDED, 0);
      yield* madvise(mm, at(DISCARDED), PAGE_SIZE, MADV_DONTNEED);
      yield* mprotect(mm, at(PROTECTED.first), PROTECTED.count * PAGE_SIZE, RW);
    }),
    thread('kswapd', function* () {
      yield* shrinkMemory(machine, 64);
    }),
    thread('fork', function* () {
      const child = yield* fork(mm);
      yield* childLife(child, values, at(CHILD_PAGE), CHILD_PAGE);
    }),
  ];
  if (migrate)
    workers.push(
      thread('migrate', function* () {
        const d = world.dmirror!;
        const buf = new Uint8Array(N * PAGE_SIZE);
        if ((yield* d.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, cmd(0, buf))) === 0)
          for (let p = 0; p < N; p++)
            values.check('MIGRATE_TO_DEV read-back', p, buf, p * PAGE_SIZE);
        yield* d.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, cmd(0, buf));
      }),
    );
  k.spawn('process', function* () {
    world.base = yield* mapThpRegion(mm);
    if (zero) yield* cpuRead(mm, at(0), PAGE_SIZE);
    else for (let p = 0; p < N; p++) yield* cpuWrite(mm, at(p), pageOf(initial(p)));
    world.dmirror = yield* Dmirror.open(device, mm);
    ready.completeAll();
    for (const t of workers) yield* join(t);
    yield* checkPages(mm, world.base, N, values, 'process');
    yield* world.dmirror.close();
    yield* mmput(mm);
  });
}

/**
 * The forked child reads its copy of one page (a value the parent had allowed), writes its own
 * (COW: the parent must never see it) and exits.
 */
function* childLife(child: Mm, values: PageValues, addr: number, page: number): Co {
  yield* tolerateOom(function* () {
    values.check('forked child', page, yield* cpuRead(child, addr, PAGE_SIZE), 0);
    yield* cpuWrite(child, addr, pageOf(-1 - page));
  });
  yield* mmput(child);
}

/** Runs CPU accesses that may meet ENOMEM when the frames run out (VM_FAULT_OOM). */
function* tolerateOom(body: () => Co<unknown>): Co {
  try {
    yield* body();
  } catch (e) {
    if (!isErrno(e, 'ENOMEM')) throw e;
  }
}
