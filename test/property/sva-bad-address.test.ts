// Regression (found by api-bad-input.test.ts, shrunk by fast-check): an SVA DMA at the address
// 4096n (a bigint) threw a TypeError (Cannot mix BigInt and other types) from the page
// arithmetic of svaDma(); the page-request entry points did the same. They now refuse an address
// that is not a non-negative safe integer with an EINVAL naming the call, before any work.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Co,
  installOracles,
  iommuReportDeviceFault,
  iommuSvaBindDevice,
  iommuSvaHandleIopf,
  iommuSvaUnbindDevice,
  isErrno,
  Kernel,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  Machine,
  mmap,
  mmput,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  svaDma,
} from '../../src/index.ts';

test('svaDma, iommu_report_device_fault and iommu_sva_handle_iopf refuse a bad address with EINVAL', () => {
  const k = new Kernel({ maxSteps: 100_000 });
  const machine = new Machine(k, { frames: 64 });
  installOracles(k, machine);
  const mm = machine.createMm();
  const refusals: string[] = [];
  k.spawn('process', function* () {
    const a = yield* mmap(mm, {
      len: PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    const bond = yield* iommuSvaBindDevice('dev', mm);
    for (const addr of [4096n, Number.NaN, -PAGE_SIZE, 2 ** 64, '4096'] as unknown as number[]) {
      const calls: [string, () => Co<unknown>][] = [
        ['svaDma', () => svaDma(bond, addr, true)],
        ['iommu_report_device_fault', () => iommuReportDeviceFault(bond, addr, false)],
        ['iommu_sva_handle_iopf', () => iommuSvaHandleIopf(bond, addr, true)],
      ];
      for (const [name, run] of calls) {
        try {
          yield* run();
          assert.fail(`${name}(${String(addr)}) returned`);
        } catch (e) {
          assert.ok(isErrno(e, 'EINVAL'), `${name}: ${String(e)}`);
          assert.ok(e.message.startsWith(`EINVAL: ${name}: `), e.message);
          refusals.push(name);
        }
      }
    }
    assert.equal(mm.rss, 0, 'nothing was faulted in');
    assert.equal(yield* svaDma(bond, a, true), true, 'a good address still works');
    yield* iommuSvaUnbindDevice(bond);
    yield* mmput(mm);
  });
  const r = k.run();
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(refusals.length, 15);
});
