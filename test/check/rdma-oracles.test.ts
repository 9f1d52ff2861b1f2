// The oracles added for device translation tables and driver objects: translation (permission,
// serialization, destruction), lifetime, and liveness of device faults.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { type Co, isKernelBug, Kernel } from '../../src/index.ts';
import { Tracked } from '../../src/kernel/lifetime.ts';
import { cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { invalidateRangeEnd, invalidateRangeStart, rangeInit } from '../../src/mm/mmu-notifier.ts';
import { SecondaryMmu, snapshotPte } from '../../src/mm/secondary-mmu.ts';
import { ANON, P, RW } from '../mm/helpers.ts';

function run(body: (mm: Mm, k: Kernel) => Co) {
  const k = new Kernel();
  const m = new Machine(k, { frames: 8 });
  installOracles(k, m, { leaks: false });
  const mm = m.createMm();
  k.spawn('t', () => body(mm, k));
  return k.run();
}

function* page(mm: Mm): Co<number> {
  const a = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
  yield* cpuWriteU32(mm, a, 1);
  return a;
}

test('translation: a writable translation in a region registered read-only is a permission violation', () => {
  const ok = run(function* (mm) {
    const a = yield* page(mm);
    new SecondaryMmu('ro', { regionWritable: false }).map(mm, a, {
      ...snapshotPte(mm.pte(a)!),
      writable: false,
    });
  });
  assert.equal(ok.ok, true, ok.bug?.message);
  const r = run(function* (mm) {
    const a = yield* page(mm);
    new SecondaryMmu('ro', { regionWritable: false }).map(mm, a, snapshotPte(mm.pte(a)!));
  });
  assert.ok(isKernelBug(r.bug, 'permission'), r.bug?.message);
  assert.match(r.bug!.message, /device ro commits a writable translation/);
});

test('translation: two updates of one table in flight, and use or update after retire, are serialization violations', () => {
  const twice = run(function* () {
    const t = new SecondaryMmu('mr1');
    t.beginUpdate();
    yield;
    t.beginUpdate();
  });
  assert.ok(isKernelBug(twice.bug, 'serialization'), twice.bug?.message);
  assert.match(twice.bug!.message, /two translation updates of mr1/);
  const sequential = run(function* () {
    const t = new SecondaryMmu('mr1');
    for (let i = 0; i < 2; i++) {
      t.beginUpdate();
      yield;
      t.endUpdate();
    }
    t.retire();
  });
  assert.equal(sequential.ok, true, sequential.bug?.message);
  const nonEmpty = run(function* (mm) {
    const a = yield* page(mm);
    const t = new SecondaryMmu('mr1');
    t.map(mm, a, snapshotPte(mm.pte(a)!));
    t.map(mm, a, snapshotPte(mm.pte(a)!));
    t.retire();
  });
  assert.match(nonEmpty.bug?.message ?? '', /mr1 is destroyed while it still holds 1 translations/);
  const after = run(function* () {
    const t = new SecondaryMmu('mr1');
    t.retire();
    t.beginUpdate();
  });
  assert.match(
    after.bug?.message ?? '',
    /device mr1 posts a translation update after its translation table was destroyed/,
  );
});

test('lifetime: freed with a reference out, freed twice, a reference after the free, one never dropped', () => {
  const cases: [string, (o: Tracked) => void, RegExp][] = [
    [
      'ref out',
      (o) => {
        o.get();
        o.free();
      },
      /freed while 1 reference\(s\) are outstanding/,
    ],
    [
      'twice',
      (o) => {
        o.free();
        o.free();
      },
      /is freed twice/,
    ],
    [
      'after',
      (o) => {
        o.free();
        o.get();
      },
      /reference taken after it was freed/,
    ],
    ['leaked', (o) => o.get(), /1 reference\(s\) never dropped/],
    ['too many puts', (o) => o.put(), /more references dropped than taken/],
  ];
  for (const [name, body, message] of cases) {
    const r = run(function* (mm) {
      body(new Tracked('obj'));
      yield* mmput(mm);
    });
    assert.ok(isKernelBug(r.bug, 'lifetime'), `${name}: ${r.bug?.message}`);
    assert.match(r.bug!.message, message, name);
  }
  const fine = run(function* () {
    const o = new Tracked('obj');
    o.get();
    o.put();
    o.free();
    yield;
  });
  assert.equal(fine.ok, true, fine.bug?.message);
});

test('liveness: a device retry is fine if an invalidation of its mm ran during the attempt, a violation if none did', () => {
  const emit = (k: Kernel, type: 'dev-fault' | 'dev-retry', mm: Mm, a: number) => {
    if (type === 'dev-fault')
      k.trace.emit(type, { dev: 'd', mm: mm.id, start: a, end: a + P, write: false });
    else k.trace.emit(type, { dev: 'd', mm: mm.id, start: a, reason: 'test' });
  };
  const withInvalidation = run(function* (mm, k) {
    const a = yield* page(mm);
    emit(k, 'dev-fault', mm, a);
    const range = rangeInit(mm, 'CLEAR', a, a + P);
    yield* invalidateRangeStart(range);
    yield* invalidateRangeEnd(range);
    emit(k, 'dev-retry', mm, a);
    emit(k, 'dev-fault', mm, a);
    yield* invalidateRangeStart(range);
    emit(k, 'dev-retry', mm, a);
    yield* invalidateRangeEnd(range);
  });
  assert.equal(withInvalidation.ok, true, withInvalidation.bug?.message);
  const without = run(function* (mm, k) {
    const a = yield* page(mm);
    const range = rangeInit(mm, 'CLEAR', a, a + P);
    yield* invalidateRangeStart(range);
    yield* invalidateRangeEnd(range);
    yield;
    emit(k, 'dev-fault', mm, a);
    yield;
    emit(k, 'dev-retry', mm, a);
  });
  assert.ok(isKernelBug(without.bug, 'liveness'), without.bug?.message);
  assert.match(without.bug!.message, /no invalidation of mm1 ran since the attempt began/);
});
