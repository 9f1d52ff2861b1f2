import { installOracles } from '../check/oracles/install.ts';
import { DmirrorDevice } from '../drivers/dmirror/device.ts';
import { Dmirror } from '../drivers/dmirror/dmirror.ts';
import {
  HMM_DMIRROR_EXCLUSIVE,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_WRITE,
} from '../drivers/dmirror/uapi.ts';
import { svaDma } from '../drivers/iommu/ats.ts';
import { iommuSvaBindDevice, iommuSvaUnbindDevice, type SvaBond } from '../drivers/iommu/sva.ts';
import { join, sleep } from '../kernel/context.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Completion } from '../kernel/sync/completion.ts';
import type { Co, Task } from '../kernel/task.ts';
import { Errno, isErrno } from '../lib/errors.ts';
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
import { fork } from '../mm/fork.ts';
import { Machine } from '../mm/machine.ts';
import { madvise } from '../mm/madvise.ts';
import type { Mm } from '../mm/mm.ts';
import { mmap } from '../mm/mmap.ts';
import { mprotect } from '../mm/mprotect.ts';
import { munmap } from '../mm/munmap.ts';
import { shrinkMemory } from '../mm/reclaim.ts';
import { mapThpRegion, THP_REGION_FRAMES, THP_REGION_PAGES, thpRounds } from './default-thp.ts';
import { checkPages } from './dmirror-race.ts';
import { PageValues, pageOf } from './page-values.ts';
import { paramOf, type Scenario, type ScenarioParams } from './scenario.ts';

const RW = PROT_READ | PROT_WRITE;
/** Virtual time between two operations of a thread, ns. */
const THINK_NS = 20_000;
/** The SVA device touches every SVA_STRIDE-th page: a sample, so it does not dominate the run. */
const SVA_STRIDE = 8;
/** The CPU touches back every MIGRATE_TOUCH_STRIDE-th migrated page (the rest stay on the device). */
const MIGRATE_TOUCH_STRIDE = 2;
/** Values the SVA device writes start here (the dmirror device writes r·1,000,000 + page). */
const SVA_VALUE = 500_000;

const param = (p: ScenarioParams, name: string) => paramOf('default', p, name);

/**
 * The built-in default scenario (`odpsim run`): a process whose memory the HMM test device
 * mirrors, reading and writing it chunk by chunk, and an SVA device (IOMMU shared virtual
 * addressing: an IOTLB filled by walks of the CPU page table) reads and writes a sample of its
 * pages, while other threads munmap its tail, toggle write protection on a region, fork (the
 * child checks and writes its copy), discard a region with madvise(DONTNEED), migrate part of a
 * region to the device's private memory and give the device exclusive access to the rest (the
 * CPU then touches half of it back), use transparent huge pages in a region of their own
 * (default-thp.ts; `thp=0` leaves it out), and reclaim (a kswapd thread); where `pressure`
 * leaves the machine fewer frames than pages, faults reclaim too. Every page read by the CPU,
 * either device or the child is checked against the values its writers put there.
 */
export const defaultScenario: Scenario = {
  name: 'default',
  description:
    'a dmirror device mirrors a process and an SVA device shares its page table while threads munmap, mprotect, fork, madvise, migrate to device memory, take exclusive access, use transparent huge pages and reclaim under memory pressure',
  params: [
    {
      name: 'pages',
      description:
        "pages of the mirrored buffer, a multiple of 8: the threads work on eighths of it (munmap the last, write-protect the second, discard the third, migrate to the device and take exclusive access to the fourth; kswapd frees an eighth's worth of frames per pass)",
      default: 512,
      min: 64,
      max: 1 << 22,
    },
    {
      name: 'rounds',
      description:
        "READ/WRITE passes of the device over the buffer; also the write-protect toggles of the mprotect thread and the migrate thread's rounds, and the kswapd thread makes 2×rounds passes",
      default: 2,
      min: 1,
      max: 1000,
    },
    {
      name: 'chunk',
      description:
        "pages per device command (the last of a pass takes what is left); the machine gets 4×chunk frames on top of pressure's",
      default: 64,
      min: 1,
      max: 1 << 16,
    },
    {
      name: 'thp',
      description:
        '1 adds a 2 MiB-aligned MADV_HUGEPAGE region of two PMDs (and 1,088 frames for it) where a thread has the device read the huge zero page before the CPU writes it, and the CPU fault in a THP the device then writes, migrates whole and the CPU touches back and partly write-protects; 0 leaves it out',
      default: 1,
      min: 0,
      max: 1,
    },
    {
      name: 'pressure',
      description:
        'sizes the machine: max(64, pages×pressure/100 + 4×chunk) frames (and 1,088 more for the THP region with thp=1), the 4×chunk keeping a device command in memory; where that is below pages (at the defaults with thp=0: pressure below 50) or within a few frames of it, faults reclaim too (at pages=64 no value gets there, as the machine never has fewer than 64 frames); with thp=1 faults in the buffer may take what the THP region leaves free, so pressure bites less (thp=0 measures it alone); the kswapd thread reclaims at any value',
      default: 75,
      min: 10,
      max: 400,
    },
  ],
  check(p: ScenarioParams): void {
    // The threads' regions are eighths of the buffer.
    const pages = param(p, 'pages');
    if (pages % 8 !== 0)
      throw new Errno(
        'EINVAL',
        `parameter pages of scenario default must be a multiple of 8, got ${pages}`,
      );
  },
  build(k: Kernel, p: ScenarioParams): void {
    const pages = param(p, 'pages');
    const chunk = param(p, 'chunk');
    const thp = param(p, 'thp') === 1;
    const frames =
      defaultFrames(pages, chunk, param(p, 'pressure')) + (thp ? THP_REGION_FRAMES : 0);
    buildDefault(k, pages, param(p, 'rounds'), chunk, frames, thp);
  },
};

/**
 * The default world's frames: `pressure` percent of `pages` plus 4 device commands of headroom
 * (a command's pages must all be present at once), and never fewer than 64.
 */
export function defaultFrames(pages: number, chunk: number, pressure: number): number {
  return Math.max(64, Math.floor((pages * pressure) / 100) + 4 * chunk);
}

function buildDefault(
  k: Kernel,
  pages: number,
  rounds: number,
  chunk: number,
  frames: number,
  thp: boolean,
): void {
  const eighth = Math.max(1, Math.floor(pages / 8));
  const machine = new Machine(k, { frames });
  installOracles(k, machine);
  const device = new DmirrorDevice(machine, 0);
  const mm = machine.createMm();
  // The buffer's pages, then the THP region's (which start as zeros).
  const values = new PageValues(k, pages + (thp ? THP_REGION_PAGES : 0), (p) =>
    p < pages ? p + 1 : 0,
  );
  const ready = new Completion('ready');
  let base = 0;
  let thpBase = 0;
  let dmirror: Dmirror | null = null;
  let sva: SvaBond | null = null;
  const at = (page: number) => base + page * PAGE_SIZE;
  /** A dmirror command over pages [first, end) whose read-back is checked when it succeeds. */
  function* deviceCommand(request: number, who: string, first: number, end: number): Co {
    const n = end - first;
    const buf = new Uint8Array(n * PAGE_SIZE);
    const c = { addr: at(first), ptr: buf, npages: n, cpages: 0, faults: 0 };
    if ((yield* dmirror!.ioctl(request, c)) === 0)
      for (let i = 0; i < n; i++) values.check(who, first + i, buf, i * PAGE_SIZE);
  }

  const workers: Task[] = [
    k.spawn('device', function* () {
      yield* ready.wait();
      for (let r = 1; r <= rounds; r++) {
        for (let first = 0; first < pages; first += chunk) {
          const n = Math.min(chunk, pages - first);
          const buf = new Uint8Array(n * PAGE_SIZE);
          const c = { addr: at(first), ptr: buf, npages: n, cpages: 0, faults: 0 };
          if ((yield* dmirror!.ioctl(HMM_DMIRROR_READ, c)) === 0) {
            for (let i = 0; i < n; i++) values.check('device READ', first + i, buf, i * PAGE_SIZE);
          }
          yield* sleep(THINK_NS);
          for (let i = 0; i < n; i++) {
            values.allow(first + i, r * 1_000_000 + first + i);
            buf.set(pageOf(r * 1_000_000 + first + i), i * PAGE_SIZE);
          }
          yield* dmirror!.ioctl(HMM_DMIRROR_WRITE, { ...c, ptr: buf, cpages: 0, faults: 0 });
          yield* sleep(THINK_NS);
        }
      }
    }),
    k.spawn('sva', function* () {
      yield* ready.wait();
      const buf = new Uint8Array(PAGE_SIZE);
      for (let r = 1; r <= rounds; r++) {
        for (let p = 0; p < pages; p += SVA_STRIDE) {
          const read = yield* svaDma(sva!, at(p), false, (data) => data.read(0, buf, 0, PAGE_SIZE));
          if (read) values.check('SVA DMA read', p, buf, 0);
          yield* sleep(THINK_NS / 2);
          const value = SVA_VALUE + r * 1_000_000 + p;
          values.allow(p, value);
          const bytes = pageOf(value);
          yield* svaDma(sva!, at(p), true, (data) => data.write(0, bytes, 0, PAGE_SIZE));
          yield* sleep(THINK_NS / 2);
        }
      }
    }),
    k.spawn('munmap', function* () {
      yield* ready.wait();
      yield* sleep(THINK_NS * 7);
      for (let p = pages - eighth; p < pages; p++) values.unmap(p);
      yield* munmap(mm, at(pages - eighth), eighth * PAGE_SIZE);
    }),
    k.spawn('mprotect', function* () {
      yield* ready.wait();
      for (let r = 0; r < rounds; r++) {
        yield* sleep(THINK_NS * 3);
        yield* mprotect(mm, at(eighth), eighth * PAGE_SIZE, PROT_READ);
        yield* sleep(THINK_NS * 2);
        yield* mprotect(mm, at(eighth), eighth * PAGE_SIZE, RW);
      }
    }),
    k.spawn('fork', function* () {
      yield* ready.wait();
      yield* sleep(THINK_NS * 5);
      const child = yield* fork(mm);
      const toggled = { first: eighth, end: 2 * eighth };
      const kid = k.spawn('child', () => childLife(child, values, base, pages - eighth, toggled));
      yield* join(kid);
    }),
    k.spawn('madvise', function* () {
      yield* ready.wait();
      yield* sleep(THINK_NS * 4);
      for (let p = 2 * eighth; p < 3 * eighth; p++) values.allow(p, 0);
      yield* madvise(mm, at(2 * eighth), eighth * PAGE_SIZE, MADV_DONTNEED);
    }),
    k.spawn('migrate', function* () {
      yield* ready.wait();
      // The fourth eighth, which no other thread unmaps, protects or discards: the device
      // takes atomic access to its second half (device-exclusive entries, which the fork
      // thread may meet) and migrates its first half to device memory; the CPU then touches
      // every other page back.
      const half = Math.max(1, Math.floor(eighth / 2));
      const region = { first: 3 * eighth, end: 4 * eighth };
      for (let r = 0; r < rounds; r++) {
        yield* sleep(THINK_NS * 2);
        yield* deviceCommand(HMM_DMIRROR_EXCLUSIVE, 'EXCLUSIVE', region.first + half, region.end);
        yield* deviceCommand(
          HMM_DMIRROR_MIGRATE_TO_DEV,
          'MIGRATE_TO_DEV',
          region.first,
          region.first + half,
        );
        yield* sleep(THINK_NS);
        for (let p = region.first; p < region.end; p += MIGRATE_TOUCH_STRIDE)
          values.check('CPU touch', p, yield* cpuRead(mm, at(p), PAGE_SIZE), 0);
      }
    }),
    k.spawn('kswapd', function* () {
      yield* ready.wait();
      for (let r = 0; r < 2 * rounds; r++) {
        yield* sleep(THINK_NS * 3);
        yield* shrinkMemory(machine, eighth);
      }
    }),
  ];

  if (thp)
    workers.push(
      k.spawn('thp', function* () {
        yield* ready.wait();
        yield* thpRounds(mm, dmirror!, { base: thpBase, values, first: pages }, rounds);
      }),
    );

  k.spawn('process', function* () {
    base = yield* mmap(mm, {
      len: pages * PAGE_SIZE,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    if (thp) thpBase = yield* mapThpRegion(mm);
    for (let p = 0; p < pages; p++) yield* cpuWrite(mm, at(p), pageOf(p + 1));
    dmirror = yield* Dmirror.open(device, mm);
    sva = yield* iommuSvaBindDevice('sva0', mm);
    ready.completeAll();
    for (const t of workers) yield* join(t);
    yield* checkPages(mm, base, pages, values, 'process');
    if (thp) yield* checkPages(mm, thpBase, THP_REGION_PAGES, values, 'process', pages);
    yield* iommuSvaUnbindDevice(sva);
    yield* dmirror.close();
    yield* mmput(mm);
  });
}

/**
 * The forked child: reads a sample of its copy (each page must hold a value the parent had
 * allowed), writes its own values (COW: the parent must never see them), and exits. Pages in
 * `toggled` (the region the mprotect thread flips) are read-only in the child when the fork
 * landed inside a read-only window, so a write there may fault with EFAULT (SIGSEGV); anywhere
 * else a fault is a bug.
 */
function* childLife(
  child: Mm,
  values: PageValues,
  base: number,
  mapped: number,
  toggled: { first: number; end: number },
): Co {
  const step = Math.max(1, Math.floor(mapped / 16));
  for (let p = 0; p < mapped; p += step) {
    if (values.isUnmapped(p)) continue;
    values.check('forked child', p, yield* cpuRead(child, base + p * PAGE_SIZE, PAGE_SIZE), 0);
    try {
      yield* cpuWrite(child, base + p * PAGE_SIZE, pageOf(-1 - p));
    } catch (e) {
      if (!isErrno(e, 'EFAULT') || p < toggled.first || p >= toggled.end) throw e;
    }
    yield* sleep(THINK_NS / 4);
  }
  yield* mmput(child);
}
