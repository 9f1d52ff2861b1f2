/**
 * dmirror's migrations (lib/test_hmm.c): dmirror_migrate_to_device() with
 * dmirror_migrate_alloc_and_copy() and dmirror_migrate_finalize_and_map(),
 * dmirror_migrate_to_system(), and dmirror_devmem_fault() (the pgmap's migrate_to_ram) with
 * dmirror_devmem_fault_alloc_and_copy().
 */

import { charge } from '../../cost/charge.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { Co } from '../../kernel/task.ts';
import { Errno } from '../../lib/errors.ts';
import { HPAGE_PMD_NR, hex, PAGE_SIZE, PMD_SIZE } from '../../mm/constants.ts';
import { mmput } from '../../mm/exit.ts';
import { allocHugeFolio, pmdAlign } from '../../mm/huge-memory.ts';
import type { VmFault } from '../../mm/memremap.ts';
import {
  MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  type MigrateVma,
  migrateVma,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
} from '../../mm/migrate-device.ts';
import { mmgetNotZero } from '../../mm/mm-refs.ts';
import { mmuIntervalReadBegin, mmuIntervalReadRetry } from '../../mm/mmu-interval-notifier.ts';
import type { Page } from '../../mm/page.ts';
import type { Vma } from '../../mm/vma.ts';
import { backing } from './devmem.ts';
import type { Dmirror } from './dmirror.ts';
import { checkBuffer, dmirrorReadBack } from './read-write.ts';
import { HMM_DMIRROR_FLAG_FAIL_ALLOC, type HmmDmirrorCmd } from './uapi.ts';

/** Pages per migrate_vma call: the src/dst arrays hold one PMD's worth. */
export const MIGRATE_CHUNK_PAGES = 512;

/** Whether `d` can still migrate: the mirrored process is alive (an mm_users reference). */
function mmgetOrEinval(d: Dmirror): void {
  if (!mmgetNotZero(d.mm)) throw new Errno('EINVAL', `${d.pt.name}: the mirrored process is gone`);
}

/**
 * The chunks of [start, end) under mmap_lock for read: each at most 512 pages inside one VMA,
 * which must exist and be readable (EINVAL).
 */
function* forEachChunk(
  d: Dmirror,
  start: number,
  end: number,
  fn: (vma: Vma, from: number, to: number) => Co,
): Co {
  mmgetOrEinval(d);
  try {
    yield* d.mm.mmapLock.downRead();
    try {
      for (let addr = start, next: number; addr < end; addr = next) {
        const vma = d.mm.findVma(addr);
        if (vma === undefined || !vma.readable)
          throw new Errno('EINVAL', `${d.pt.name}: no readable VMA at ${hex(addr)} to migrate`);
        next = Math.min(end, addr + MIGRATE_CHUNK_PAGES * PAGE_SIZE, vma.end);
        yield* fn(vma, addr, next);
      }
    } finally {
      d.mm.mmapLock.upRead();
    }
  } finally {
    yield* mmput(d.mm);
  }
}

/**
 * dmirror_migrate_to_device(): migrates system pages, holes and the zero page of the range to
 * this device in chunks, then reads the whole range back through the device table: `cpages`
 * counts the pages read, and a page the device has no entry for is ENOENT.
 */
export function* dmirrorMigrateToDevice(d: Dmirror, cmd: HmmDmirrorCmd): Co {
  const bytes = checkBuffer(cmd);
  const start = cmd.addr;
  const end = start + cmd.npages * PAGE_SIZE;
  yield* forEachChunk(d, start, end, function* (vma, from, to) {
    const args = migrateVma(
      vma,
      from,
      to,
      MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND,
      d.device,
    );
    yield* ownMigration(d, args, allocAndCopy, finalizeAndMap);
  });
  const bounce = new Uint8Array(bytes);
  const n = yield* dmirrorReadBack(d, start, end, bounce);
  cmd.cpages = n;
  if (n < cmd.npages)
    throw new Errno('ENOENT', `${d.pt.name}: page ${hex(start + n * PAGE_SIZE)} did not migrate`);
  cmd.ptr.set(bounce);
}

/**
 * One migrate_vma round of this mirror's own: setup, the driver's copy, pages, the driver's
 * table update, finalize. The device table is declared the driver's to keep for the range
 * meanwhile (its MIGRATE invalidation skips it).
 */
function* ownMigration(
  d: Dmirror,
  args: MigrateVma,
  copy: (d: Dmirror, args: MigrateVma) => Co,
  update: (d: Dmirror, args: MigrateVma, seq: number) => Co,
): Co {
  const seq = yield* mmuIntervalReadBegin(d.notifier);
  // A CPU fault of another process (a fork child) on one of this device's pages migrates in
  // that address space, which this mirror does not mirror: nothing of its own to keep.
  const mine = args.vma.mm === d.mm;
  const own = { start: args.start, end: args.end };
  if (mine)
    yield* ownBracket(d, () => {
      d.pt.beginOwnMigration(d.mm, args.start, args.end);
      d.ownRanges.push(own);
    });
  try {
    yield* migrateVmaSetup(args);
    try {
      yield* copy(d, args);
      yield* migrateVmaPages(args);
      yield* update(d, args, seq);
    } finally {
      yield* migrateVmaFinalize(args);
    }
  } finally {
    if (mine)
      yield* ownBracket(d, () => {
        d.pt.endOwnMigration(d.mm, args.start, args.end);
        d.ownRanges.splice(d.ownRanges.indexOf(own), 1);
      });
  }
}

/** Under the mutex, an own migration begins or ends: racing faults must retry. */
function* ownBracket(d: Dmirror, change: () => void): Co {
  yield* d.mutex.lock();
  change();
  d.ownGeneration++;
  d.mutex.unlock();
  d.ownDone.wakeUpAll();
}

/** HMM_DMIRROR_FLAG_FAIL_ALLOC: true (and the flag cleared) when it fails this allocation. */
function failAlloc(d: Dmirror): boolean {
  if (!(d.flags & HMM_DMIRROR_FLAG_FAIL_ALLOC)) return false;
  d.flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;
  return true;
}

/**
 * dmirror_migrate_alloc_and_copy(): a device page for each entry to migrate, its backing page
 * filled from the source (zeroed for a hole or the zero page); a device THP for a compound
 * entry. FAIL_ALLOC fails the next allocation once: a small page then stays behind, a compound
 * entry gets 512 small device pages instead (the core splits the source).
 */
function* allocAndCopy(d: Dmirror, args: MigrateVma): Co {
  const devmem = d.device.devmem;
  for (let i = 0; i < args.src.length; i++) {
    const src = args.src[i]!;
    if (!src.migrate) continue;
    if (src.compound) {
      const huge = failAlloc(d) ? null : yield* devmem.allocHuge(d);
      for (let j = 0; j < HPAGE_PMD_NR; j++) {
        const dpage = huge?.[j] ?? (yield* devmem.allocPage(d));
        if (dpage !== null) copyToDevice(args, i + j, dpage, j === 0 && huge !== null);
      }
      i += HPAGE_PMD_NR - 1;
      yield;
      continue;
    }
    if (failAlloc(d)) continue;
    const dpage = yield* devmem.allocPage(d);
    if (dpage === null) continue;
    copyToDevice(args, i, dpage, false);
    // The copy takes time (and alloc_page() may sleep): other threads run meanwhile.
    yield;
  }
}

/** Fills the backing page of `dpage` from src entry `i` and makes it that entry's dst. */
function copyToDevice(args: MigrateVma, i: number, dpage: Page, compound: boolean): void {
  const src = args.src[i]!;
  const data = backing(dpage);
  if (src.page !== null) {
    data.copyFrom(src.page.data);
    charge('page.copy');
  } else data.clear();
  const write = src.write || (src.page === null && args.vma.writable);
  args.dst[i] = { page: dpage, write, compound };
}

/**
 * dmirror_migrate_finalize_and_map(): under the mutex, each migrated page enters the table. If
 * another invalidation hit the mirror since the migration began (an entry may be gone), the
 * range's entries are erased instead: the device faults them in again, and a read-back finds
 * them missing.
 */
function* finalizeAndMap(d: Dmirror, args: MigrateVma, seq: number): Co {
  yield* d.mutex.lock();
  try {
    // Mutant: Linux's dmirror stores the pages unchecked; one whose entry a racing munmap or
    // DONTNEED zapped is freed by migrate_vma_finalize() while the table still maps it (found
    // by sweeping dmirror-race with migrate=1).
    if (
      !kernel().mutant('dmirror.migrate-map-unchecked') &&
      mmuIntervalReadRetry(d.notifier, seq)
    ) {
      // The old pages' entries, which the own invalidation left, must not outlive them either.
      d.pt.unmapRange(d.mm, args.start, args.end);
      return;
    }
    for (let i = 0; i < args.src.length; i++) {
      const dst = args.dst[i];
      if (!args.src[i]!.migrate || dst === null || dst === undefined) continue;
      d.pt.map(d.mm, args.start + i * PAGE_SIZE, {
        pfn: dst.page.pfn,
        gen: dst.page.gen,
        writable: dst.write,
      });
    }
  } finally {
    d.mutex.unlock();
  }
}

/**
 * dmirror_migrate_to_system(): migrates this device's pages of the range back to system
 * memory; `cpages` counts the entries collected and migrated.
 */
export function* dmirrorMigrateToSystem(d: Dmirror, cmd: HmmDmirrorCmd): Co {
  const end = cmd.addr + cmd.npages * PAGE_SIZE;
  yield* forEachChunk(d, cmd.addr, end, function* (vma, from, to) {
    const args = migrateVma(
      vma,
      from,
      to,
      MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_COMPOUND,
      d.device,
    );
    yield* ownMigration(d, args, faultAllocAndCopy, eraseMigrated);
    for (const s of args.src) if (s.page !== null && s.migrate) cmd.cpages++;
  });
}

/**
 * dmirror_devmem_fault() (migrate_to_ram): the mirror that migrated the page (its backing
 * page says which) migrates back the faulting page; a failed setup is SIGBUS, no system page
 * ENOMEM (VM_FAULT_OOM).
 */
export function* dmirrorDevmemFault(vmf: VmFault): Co {
  const rpage = vmf.page.zoneDeviceData as Page;
  const d = rpage.zoneDeviceData as Dmirror;
  // A device THP still mapped by a huge PMD goes back whole.
  const huge = vmf.vma.mm.pmdHuge(vmf.addr);
  const start = huge ? pmdAlign(vmf.addr) : vmf.addr;
  const args = migrateVma(
    vmf.vma,
    start,
    start + (huge ? PMD_SIZE : PAGE_SIZE),
    MIGRATE_VMA_SELECT_DEVICE_PRIVATE | (huge ? MIGRATE_VMA_SELECT_COMPOUND : 0),
    d.device,
    vmf.page,
  );
  yield* ownMigration(d, args, faultAllocAndCopy, eraseMigrated);
  if (starved.has(args))
    throw new Errno('ENOMEM', `${d.pt.name}: no system page to migrate ${hex(vmf.addr)} back`);
}

/** Migrations back that found no system page for some entry. */
const starved = new WeakSet<MigrateVma>();

/**
 * dmirror_devmem_fault_alloc_and_copy(): a system page for each device page to migrate back
 * (a THP for a compound entry; 512 small pages on FAIL_ALLOC or when none is free), filled
 * from its backing page; the device's entries for them are erased first.
 */
function* faultAllocAndCopy(d: Dmirror, args: MigrateVma): Co {
  const machine = args.vma.mm.machine;
  for (let i = 0; i < args.src.length; i++) {
    const src = args.src[i]!;
    if (src.page === null || !src.migrate) continue;
    if (src.compound) {
      const huge = failAlloc(d) ? null : yield* allocHugeFolio(machine);
      yield* eraseDeviceEntries(d, args, i, HPAGE_PMD_NR);
      for (let j = 0; j < HPAGE_PMD_NR; j++) {
        const page = huge?.[j] ?? (yield* machine.allocPage('anon'));
        copyToSystem(args, i + j, page, j === 0 && huge !== null);
      }
      i += HPAGE_PMD_NR - 1;
      continue;
    }
    const page = yield* machine.allocPage('anon');
    if (page !== null) yield* eraseDeviceEntries(d, args, i, 1);
    copyToSystem(args, i, page, false);
  }
}

/** Under the mutex, the device's entries for src entries [i, i + n) go. */
function* eraseDeviceEntries(d: Dmirror, args: MigrateVma, i: number, n: number): Co {
  yield* d.mutex.lock();
  d.pt.unmapRange(d.mm, args.start + i * PAGE_SIZE, args.start + (i + n) * PAGE_SIZE);
  d.mutex.unlock();
}

/** Fills system page `page` (null: none could be had) from src entry `i`'s backing page. */
function copyToSystem(args: MigrateVma, i: number, page: Page | null, compound: boolean): void {
  const src = args.src[i]!;
  if (page === null) starved.add(args);
  else if (src.page === null || !src.migrate) args.vma.mm.machine.phys.put(page);
  else {
    page.locked = true;
    page.data.copyFrom(backing(src.page));
    charge('page.copy');
    args.dst[i] = { page, write: src.write, compound };
  }
}

/** The device entries of pages migrated back are gone already (erased before the copy). */
function* eraseMigrated(_d: Dmirror, _args: MigrateVma, _seq: number): Co {}
