// The SVA client on its own: bind and unbind, DMA through the IOTLB, page requests resolved
// like CPU faults (or answered INVALID), the secondary-TLB hook emptying the IOTLB, the release
// at exit, and the bad inputs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { measureLeaks } from '../../src/check/oracles/leaks.ts';
import {
  svaDmaReadU32 as dmaRead,
  svaDmaWriteU32 as dmaWrite,
} from '../../src/drivers/iommu/ats.ts';
import { iommuSvaBindDevice, iommuSvaUnbindDevice } from '../../src/drivers/iommu/sva.ts';
import { type Co, isErrno, Kernel } from '../../src/index.ts';
import type { TraceEvent } from '../../src/kernel/trace.ts';
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
import { mprotect } from '../../src/mm/mprotect.ts';
import { munmap } from '../../src/mm/munmap.ts';

const RW = PROT_READ | PROT_WRITE;

/** Runs `body` as one task on a fresh machine with the oracles; returns the run, its trace and machine. */
function run(body: (mm: Mm) => Co) {
  const k = new Kernel();
  const events: TraceEvent[] = [];
  k.trace.subscribe((e) => events.push({ ...e }));
  const machine = new Machine(k, { frames: 16 });
  installOracles(k, machine);
  const mm = machine.createMm();
  k.spawn('process', () => body(mm));
  const r = k.run();
  return {
    r,
    events,
    machine,
    count: (type: string) => events.filter((e) => e.type === type).length,
  };
}

/** What measureLeaks() reports once every reference was dropped. */
const NO_LEAKS = { frames: 0, swapSlots: 0, mms: 0, subscriptions: 0, pins: 0 };

test('DMA sees what the CPU wrote and the CPU sees what the DMA wrote; a not-present page is faulted in by a page request; unbind leaves nothing behind', () => {
  const seen: (number | null)[] = [];
  const { r, machine, count, events } = run(function* (mm) {
    const base = yield* mmap(mm, {
      len: 2 * PAGE_SIZE,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    yield* cpuWriteU32(mm, base, 41);
    const bond = yield* iommuSvaBindDevice('sva0', mm);
    seen.push(yield* dmaRead(bond, base));
    // The second page was never touched: the IOMMU finds no entry, the device asks for it.
    assert.equal(yield* dmaWrite(bond, base + PAGE_SIZE + 8, 7), true);
    seen.push(yield* cpuReadU32(mm, base + PAGE_SIZE + 8));
    // A hit: no new walk.
    seen.push(yield* dmaRead(bond, base));
    assert.equal(bond.iotlb.size, 2);
    yield* iommuSvaUnbindDevice(bond);
    assert.equal(bond.iotlb.size, 0);
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, [41, 7, 41]);
  assert.equal(count('dev-fault'), 1);
  assert.equal(count('dev-dma'), 3);
  const iotlbFills = events.filter((e) => e.type === 'tlb-fill' && e.kind === 'iotlb');
  assert.equal(iotlbFills.length, 2, 'one IOTLB fill per page: the third DMA hits');
  assert.deepEqual(measureLeaks(machine), NO_LEAKS);
});

test('the secondary-TLB hook empties the IOTLB at each CPU flush: after munmap the DMA fails, after mprotect(READ) a write fails and a read works', () => {
  const out: unknown[] = [];
  const { r, events } = run(function* (mm) {
    const base = yield* mmap(mm, {
      len: 2 * PAGE_SIZE,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    const bond = yield* iommuSvaBindDevice('sva0', mm);
    out.push(yield* dmaWrite(bond, base, 1), yield* dmaWrite(bond, base + PAGE_SIZE, 2));
    yield* mprotect(mm, base, PAGE_SIZE, PROT_READ);
    out.push(bond.iotlb.lookup(base) === undefined);
    out.push(yield* dmaWrite(bond, base, 3), yield* dmaRead(bond, base));
    yield* munmap(mm, base + PAGE_SIZE, PAGE_SIZE);
    out.push(bond.iotlb.lookup(base + PAGE_SIZE) === undefined);
    out.push(yield* dmaRead(bond, base + PAGE_SIZE));
    yield* iommuSvaUnbindDevice(bond);
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(out, [true, true, true, false, 1, true, null]);
  // The invalidations of a range (mprotect's, munmap's) are the hook of the CPU flush of the
  // same range in the same step; unbind and the ->release of unregistration flush everything.
  const ranged: [number, number, number][] = [];
  let lastFlush: [number, number, number] | null = null;
  for (const e of events) {
    if (e.type === 'tlb-flush') lastFlush = [e.step, e.start, e.end];
    if (e.type === 'iotlb-flush' && e.start !== 0) {
      assert.deepEqual(lastFlush, [e.step, e.start, e.end]);
      ranged.push(lastFlush!);
    }
  }
  assert.equal(ranged.length, 2);
});

test('the process exiting while bound: ->release stops the PASID, later DMAs and page requests fail, unbind still cleans up', () => {
  const out: unknown[] = [];
  const { r, machine } = run(function* (mm) {
    const base = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const bond = yield* iommuSvaBindDevice('sva0', mm);
    out.push(yield* dmaWrite(bond, base, 5));
    yield* mmput(mm);
    out.push(bond.released, bond.iotlb.size, yield* dmaRead(bond, base));
    yield* iommuSvaUnbindDevice(bond);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(out, [true, true, 0, null]);
  assert.deepEqual(measureLeaks(machine), NO_LEAKS);
});

test('bad inputs: binding an exited mm and unbinding twice are EINVAL; a DMA after unbind fails', () => {
  const errors: string[] = [];
  let after: boolean | null = null;
  const { r } = run(function* (mm) {
    const base = yield* mmap(mm, { len: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const bond = yield* iommuSvaBindDevice('sva0', mm);
    yield* iommuSvaUnbindDevice(bond);
    after = yield* dmaWrite(bond, base, 1);
    try {
      yield* iommuSvaUnbindDevice(bond);
    } catch (e) {
      if (isErrno(e, 'EINVAL')) errors.push(e.message);
    }
    yield* mmput(mm);
    try {
      yield* iommuSvaBindDevice('sva1', mm);
    } catch (e) {
      if (isErrno(e, 'EINVAL')) errors.push(e.message);
    }
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(after, false);
  assert.equal(errors.length, 2);
  assert.match(errors[0]!, /iommu_sva_unbind_device: sva0 is not bound/);
  assert.match(errors[1]!, /iommu_sva_bind_device: mm\d+ has no users left/);
});

for (const exitFirst of [false, true]) {
  test(`getPut (arm-smmu-v3, 5.11-6.6): bound with mmu_notifier_get, dropped with mmu_notifier_put${exitFirst ? ' after the exit' : ''}; DMA, the hook and ->release work the same, and nothing leaks`, () => {
    const out: unknown[] = [];
    const { r, machine, events } = run(function* (mm) {
      const base = yield* mmap(mm, {
        len: 2 * PAGE_SIZE,
        prot: RW,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      const bond = yield* iommuSvaBindDevice('sva0', mm, true);
      out.push(yield* dmaWrite(bond, base, 9), yield* cpuReadU32(mm, base));
      yield* munmap(mm, base + PAGE_SIZE, PAGE_SIZE);
      out.push(yield* dmaRead(bond, base + PAGE_SIZE));
      if (exitFirst) {
        yield* mmput(mm);
        out.push(bond.released);
        yield* iommuSvaUnbindDevice(bond);
      } else {
        yield* iommuSvaUnbindDevice(bond);
        out.push(bond.released);
        yield* mmput(mm);
      }
    });
    assert.equal(r.ok, true, r.bug?.message);
    assert.deepEqual(out, [true, 9, null, exitFirst]);
    const paths = events.flatMap((e) =>
      e.type === 'mm-path' && e.phase === 'begin' ? [e.fn] : [],
    );
    assert.ok(paths.includes('mmu_notifier_get') && paths.includes('mmu_notifier_put'));
    assert.ok(!paths.includes('mmu_notifier_register'));
    assert.deepEqual(measureLeaks(machine), NO_LEAKS);
  });
}
