import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DmirrorDevice } from '../../src/drivers/dmirror/device.ts';
import { Dmirror } from '../../src/drivers/dmirror/dmirror.ts';
import { HMM_DMIRROR_MIGRATE_TO_DEV } from '../../src/drivers/dmirror/uapi.ts';
import { type Co, isErrno } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { getUserPages, unpinUserPages } from '../../src/mm/gup.ts';
import type { Machine } from '../../src/mm/machine.ts';
import { DevPagemap } from '../../src/mm/memremap.ts';
import {
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migrateVma,
  migrateVmaSetup,
} from '../../src/mm/migrate-device.ts';
import { mmdrop, mmgrab } from '../../src/mm/mm-refs.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { oomReap } from '../../src/mm/oom-reaper.ts';
import { runMm } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function* expectErrno(code: string, co: () => Co<unknown>): Co {
  try {
    yield* co();
  } catch (e) {
    assert.ok(isErrno(e, code as never), `expected ${code}, got ${String(e)}`);
    return;
  }
  assert.fail(`expected ${code}`);
}

test('migrate_vma refuses what migrate_vma_setup() refuses, with EINVAL naming it', () => {
  const r = runMm(function* (machine: Machine) {
    const mm = machine.createMm();
    const ptr = yield* mmap(mm, { len: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    const vma = mm.findVma(ptr)!;
    const sys = MIGRATE_VMA_SELECT_SYSTEM;
    const bad: [string, () => unknown][] = [
      ['unaligned start', () => migrateVma(vma, ptr + 1, ptr + PAGE_SIZE, sys, null)],
      ['empty range', () => migrateVma(vma, ptr, ptr, sys, null)],
      ['outside the VMA', () => migrateVma(vma, ptr, ptr + 8 * PAGE_SIZE, sys, null)],
      ['no select bits', () => migrateVma(vma, ptr, ptr + PAGE_SIZE, 0, null)],
      ['unknown select bits', () => migrateVma(vma, ptr, ptr + PAGE_SIZE, 64, null)],
    ];
    for (const [what, f] of bad) assert.throws(f, (e) => isErrno(e, 'EINVAL'), what);
    const system = machine.phys.zeroPage;
    assert.throws(
      () => migrateVma(vma, ptr, ptr + PAGE_SIZE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, null, system),
      /fault_page is not a device-private page/,
    );
    // Without mmap_lock held, setup refuses.
    const args = migrateVma(vma, ptr, ptr + PAGE_SIZE, sys, null);
    yield* expectErrno('EINVAL', () => migrateVmaSetup(args));
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('memremap_pages refuses a pgmap of no pages or too many; memunmap_pages twice is EINVAL', () => {
  const r = runMm(function* (machine: Machine) {
    const ops = { pageFree() {}, *migrateToRam() {} };
    assert.throws(() => new DevPagemap(machine, null, 0, ops), /memremap_pages: 0 pages/);
    assert.throws(
      () => new DevPagemap(machine, null, 1 << 20, ops),
      (e) => isErrno(e, 'EINVAL'),
    );
    const pgmap = new DevPagemap(machine, null, 4, ops);
    assert.equal(machine.phys.page(pgmap.pageAt(2).pfn), pgmap.pageAt(2));
    assert.throws(
      () => pgmap.pageAt(4),
      (e) => isErrno(e, 'EINVAL'),
    );
    yield* pgmap.unmap();
    assert.equal(machine.phys.page(pgmap.first + 2), undefined);
    yield* expectErrno('EINVAL', () => pgmap.unmap());
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('GUP migrates a device-private page back; the OOM reaper frees the rest; a shared mapping cannot migrate', () => {
  const r = runMm(function* (machine: Machine) {
    const mm = machine.createMm();
    const device = new DmirrorDevice(machine, 0);
    const d = yield* Dmirror.open(device, mm);
    const ptr = yield* mmap(mm, { len: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    for (let p = 0; p < 4; p++) yield* cpuWriteU32(mm, ptr + p * PAGE_SIZE, p);
    const c = { addr: ptr, ptr: new Uint8Array(4 * PAGE_SIZE), npages: 4, cpages: 0, faults: 0 };
    assert.equal(yield* d.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, c), 0);
    const shared = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    yield* cpuWriteU32(mm, shared, 1);
    const s = { addr: shared, ptr: new Uint8Array(PAGE_SIZE), npages: 1, cpages: 0, faults: 0 };
    assert.equal(yield* d.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, s), -2);
    // GUP of a device-private page migrates it back first.
    yield* mm.mmapLock.downRead();
    const [page] = yield* getUserPages(mm, ptr, 1);
    mm.mmapLock.upRead();
    assert.equal(page!.kind, 'anon');
    assert.equal(mm.pte(ptr)?.kind, 'page');
    unpinUserPages(machine, [page!]);
    assert.equal(device.devmem.cfree, 1);
    mmgrab(mm);
    yield* oomReap(mm);
    mmdrop(mm);
    assert.equal(device.devmem.cfree, 4, 'every device page went back to the device');
    assert.equal(mm.pte(ptr + PAGE_SIZE), undefined);
    assert.equal(mm.pte(ptr), undefined);
    yield* d.close();
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
});
