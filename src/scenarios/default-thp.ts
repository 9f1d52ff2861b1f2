/**
 * The default scenario's THP thread: a 2 MiB-aligned MADV_HUGEPAGE region of two PMDs. Each
 * round the device reads the first PMD after it was discarded (the read faults in the huge
 * zero page, which the device then mirrors) and the CPU writes a sample of it (each write
 * splits the huge zero PMD first); the CPU writes the second PMD (a THP when 512 frames are
 * free), the device writes all of it, migrates it to device memory (a device THP), the CPU
 * touches it back and write-protects a part of it (a split).
 */
import type { Dmirror } from '../drivers/dmirror/dmirror.ts';
import {
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_WRITE,
} from '../drivers/dmirror/uapi.ts';
import { sleep } from '../kernel/context.ts';
import type { Co } from '../kernel/task.ts';
import {
  HPAGE_PMD_NR,
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../mm/constants.ts';
import { cpuRead, cpuWrite } from '../mm/cpu-access.ts';
import { madvise } from '../mm/madvise.ts';
import type { Mm } from '../mm/mm.ts';
import { mmap } from '../mm/mmap.ts';
import { mprotect } from '../mm/mprotect.ts';
import { type PageValues, pageOf } from './page-values.ts';

const RW = PROT_READ | PROT_WRITE;
/** Pages of the THP region: two PMDs. */
export const THP_REGION_PAGES = 2 * HPAGE_PMD_NR;
/**
 * Frames the machine gets for the region: a THP, the backing pages of its device THP, and some
 * room for the zero-page copies (so the region's THPs are not starved by the main buffer).
 */
export const THP_REGION_FRAMES = 2 * HPAGE_PMD_NR + 64;
/** The CPU writes every SAMPLE-th page of the huge zero PMD. */
const SAMPLE = 64;
/** Pages the CPU write-protects at the start of the second PMD (a partial mprotect). */
const PROTECTED = 8;
/** Virtual time between two steps, ns. */
const THINK_NS = 20_000;
/** Values this thread writes start here (round r adds r·1,000,000). */
const VALUE = 700_000;

/**
 * The region: its address and its pages in the scenario's data model (page p of the region is
 * page `first` + p there; all start as zeros).
 */
export interface ThpRegion {
  readonly base: number;
  readonly values: PageValues;
  readonly first: number;
}

/** Maps 3 PMDs and returns the two aligned ones inside, advised MADV_HUGEPAGE. */
export function* mapThpRegion(mm: Mm): Co<number> {
  const flags = MAP_PRIVATE | MAP_ANONYMOUS;
  const region = yield* mmap(mm, { len: 3 * PMD_SIZE, prot: RW, flags });
  const base = region + PMD_SIZE - (region % PMD_SIZE);
  yield* madvise(mm, base, 2 * PMD_SIZE, MADV_HUGEPAGE);
  return base;
}

/** The THP thread's rounds (see the file header). */
export function* thpRounds(mm: Mm, dmirror: Dmirror, region: ThpRegion, rounds: number): Co {
  const { base, first: offset } = region;
  const at = (p: number) => base + p * PAGE_SIZE;
  // The data model, in region page numbers.
  const values = {
    allow: (p: number, v: number) => region.values.allow(offset + p, v),
    check: (who: string, p: number, bytes: Uint8Array, at: number) =>
      region.values.check(who, offset + p, bytes, at),
  };
  const command = function* (
    request: number,
    who: string,
    first: number,
    n: number,
    fill?: number,
  ) {
    const buf = fill === undefined ? new Uint8Array(n * PAGE_SIZE) : pageOf(fill, n);
    const c = { addr: at(first), ptr: buf, npages: n, cpages: 0, faults: 0 };
    if ((yield* dmirror.ioctl(request, c)) === 0 && fill === undefined)
      for (let i = 0; i < n; i++) values.check(who, first + i, buf, i * PAGE_SIZE);
  };
  for (let r = 1; r <= rounds; r++) {
    const value = VALUE + r * 1_000_000;
    // The first PMD: discarded, read by the device (the huge zero page), written by the CPU.
    yield* madvise(mm, base, PMD_SIZE, MADV_DONTNEED);
    yield* command(HMM_DMIRROR_READ, 'THP device READ', 0, HPAGE_PMD_NR);
    yield* sleep(THINK_NS);
    for (let p = 0; p < HPAGE_PMD_NR; p += SAMPLE) {
      values.allow(p, value + p);
      yield* cpuWrite(mm, at(p), pageOf(value + p));
    }
    // The second PMD: a THP, written whole by the device, migrated, touched back, split.
    const second = HPAGE_PMD_NR;
    values.allow(second, value);
    yield* cpuWrite(mm, at(second), pageOf(value));
    for (let p = second; p < THP_REGION_PAGES; p++) values.allow(p, value + 1);
    yield* command(HMM_DMIRROR_WRITE, 'THP device WRITE', second, HPAGE_PMD_NR, value + 1);
    yield* sleep(THINK_NS);
    yield* command(HMM_DMIRROR_MIGRATE_TO_DEV, 'THP MIGRATE_TO_DEV', second, HPAGE_PMD_NR);
    yield* sleep(THINK_NS);
    values.check('THP CPU touch', second + 1, yield* cpuRead(mm, at(second + 1), PAGE_SIZE), 0);
    yield* mprotect(mm, at(second), PROTECTED * PAGE_SIZE, PROT_READ);
    yield* sleep(THINK_NS);
    yield* mprotect(mm, at(second), PROTECTED * PAGE_SIZE, RW);
  }
}
