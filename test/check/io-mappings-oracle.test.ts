// The io-mappings oracle (src/check/oracles/io-mappings.ts): revocation of device frames (by
// file, or of a whole unplugged device), machine checks on frames of a gone device, and the
// rule that a tracked VMA is unlinked before it is freed; and the lifetime oracle's rule that a
// revoked object is not found by a lookup (src/check/oracles/lifetime.ts, Tracked.revoke()).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { IoMappingsOracle } from '../../src/check/oracles/io-mappings.ts';
import { LifetimeOracle } from '../../src/check/oracles/lifetime.ts';
import { registeredOracles } from '../../src/check/oracles/registry.ts';
import { type Co, isKernelBug, Kernel } from '../../src/index.ts';
import { Tracked } from '../../src/kernel/lifetime.ts';
import type { TraceEvent, TraceEventMap } from '../../src/kernel/trace.ts';
import { MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/mm/constants.ts';
import { cpuReadU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import type { File } from '../../src/mm/file.ts';
import { DEVICE_PFN_BASE, Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mmuNotifierRegister } from '../../src/mm/mmu-notifier-register.ts';
import { MmuNotifier } from '../../src/mm/mmu-notifier-types.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { remapPfnRange } from '../../src/mm/pfn-map.ts';

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const hex = (n: number) => `0x${n.toString(16)}`;

/** A world whose trace feeds one io-mappings oracle; `body` runs as task 't'. */
function run(body: (m: Machine, oracle: IoMappingsOracle, k: Kernel) => Co) {
  const k = new Kernel();
  const m = new Machine(k, { frames: 16 });
  const oracle = new IoMappingsOracle(m);
  k.trace.subscribe(oracle.onEvent);
  k.spawn('t', () => body(m, oracle, k));
  return { ...k.run(), oracle };
}

/** A device file whose ->mmap maps the whole VMA to the device frames from `first` on. */
function deviceFile(m: Machine, name: string, first: number): File {
  const file = m.createFile(name, {
    size: 16 * P,
    ops: {
      *mmap(_f, vma) {
        yield* remapPfnRange(vma, vma.start, first, vma.end - vma.start);
      },
    },
  });
  file.get();
  return file;
}

function* mapDevice(mm: Mm, file: File, pages: number): Co<number> {
  return yield* mmap(mm, { len: pages * P, prot: RW, flags: MAP_SHARED, file });
}

/** A trace event as the bus would deliver it, for feeding an oracle directly. */
function event<K extends keyof TraceEventMap>(type: K, payload: TraceEventMap[K]): TraceEvent {
  return { step: 0, time: 0, task: 0, type, ...payload } as unknown as TraceEvent;
}

test('io-mappings: unplugging a device while a live mm still maps one of its frames is a revocation violation', () => {
  let addr = -1;
  let mmId = -1;
  const r = run(function* (m) {
    const base = m.allocDevicePfns(4);
    const mm = m.createMm();
    mmId = mm.id;
    const a = yield* mapDevice(mm, deviceFile(m, 'bar0', base), 4);
    // Everything but the last page is zapped: only base + 3 is still mapped.
    yield* munmap(mm, a, 3 * P);
    addr = a + 3 * P;
    m.revokeDevicePfns(base, 3, null);
    m.revokeDevicePfns(base + 4, 4, null);
    m.revokeDevicePfns(base + 3, 1, null);
  });
  assert.ok(isKernelBug(r.bug, 'revocation'), r.bug?.message);
  assert.equal(r.bug!.task, 't');
  assert.equal(
    r.bug!.detail,
    `device memory pfn ${hex(DEVICE_PFN_BASE + 3)} was unplugged while mm${mmId} ${hex(addr)} still maps it`,
  );
  assert.equal(r.oracle.checks, 4 + 3, 'four pte-sets and the three revocations');
});

test('io-mappings: once the device is gone, mapping or touching its frames is a machine check', () => {
  // Zap first, then unplug: fine; frames outside the gone range stay usable.
  const fine = run(function* (m) {
    const base = m.allocDevicePfns(4);
    const mm = m.createMm();
    const a = yield* mapDevice(mm, deviceFile(m, 'bar0', base), 4);
    yield* munmap(mm, a, 2 * P);
    m.revokeDevicePfns(base, 2, null);
    assert.equal(yield* cpuReadU32(mm, a + 2 * P), 0);
    yield* mmput(mm);
  });
  assert.equal(fine.ok, true, fine.bug?.message);
  assert.ok(fine.oracle.checks >= 6);

  const remap = run(function* (m) {
    const base = m.allocDevicePfns(4);
    const file = deviceFile(m, 'bar0', base);
    m.revokeDevicePfns(base, 4, null);
    const mm = m.createMm();
    yield* mapDevice(mm, file, 1);
  });
  assert.ok(isKernelBug(remap.bug, 'machine-check'), remap.bug?.message);
  assert.match(
    remap.bug!.detail,
    new RegExp(
      `^mm\\d+ 0x[0-9a-f]+ maps pfn ${hex(DEVICE_PFN_BASE)} of a device that was unplugged$`,
    ),
  );

  const touch = run(function* (m, oracle) {
    const below = m.allocDevicePfns(1);
    const base = m.allocDevicePfns(4);
    m.revokeDevicePfns(base, 2, null);
    const access = (pfn: number, write: boolean) =>
      oracle.onEvent(event('cpu-access', { mm: 1, addr: 0x40000, pfn, gen: 0, write }));
    access(base + 2, true);
    access(below, false);
    access(5, true);
    yield;
    access(base + 1, true);
  });
  assert.ok(isKernelBug(touch.bug, 'machine-check'), touch.bug?.message);
  assert.equal(touch.bug!.task, 't', 'reported in the running task');
  assert.equal(
    touch.bug!.detail,
    `CPU write of mm1 0x40000 reaches pfn ${hex(DEVICE_PFN_BASE + 2)} of a device that was unplugged`,
  );
});

test('io-mappings: a revocation from one file only looks at entries in VMAs of that file', () => {
  let addrA = -1;
  const r = run(function* (m) {
    const base = m.allocDevicePfns(2);
    // Two files exposing the same frames.
    const devA = deviceFile(m, 'devA', base);
    const devB = deviceFile(m, 'devB', base);
    const mm = m.createMm();
    yield* mapDevice(mm, devB, 2);
    m.revokeDevicePfns(base, 2, devA);
    // The frames are not gone: mapping them again is no machine check.
    addrA = yield* mapDevice(mm, devA, 1);
    assert.equal(yield* cpuReadU32(mm, addrA), 0);
    m.revokeDevicePfns(base + 1, 1, devA);
    m.revokeDevicePfns(base, 2, devA);
  });
  assert.ok(isKernelBug(r.bug, 'revocation'), r.bug?.message);
  assert.match(
    r.bug!.detail,
    new RegExp(
      `^device memory pfn ${hex(DEVICE_PFN_BASE)} was revoked from devA while mm\\d+ ${hex(addrA)} still maps it$`,
    ),
  );
});

test('io-mappings: an mm with no user left (in exit_mmap) is skipped, a live one is not', () => {
  let users = -1;
  let present = false;
  const exiting = run(function* (m) {
    const base = m.allocDevicePfns(2);
    const mm = m.createMm();
    const a = yield* mapDevice(mm, deviceFile(m, 'bar0', base), 2);
    // The device goes away while exit_mmap() runs: after mm_users dropped to 0, before the zap.
    const sub = new MmuNotifier({
      *release() {
        users = mm.users;
        present = mm.pte(a) !== undefined;
        m.revokeDevicePfns(base, 2, null);
      },
    });
    yield* mmuNotifierRegister(sub, mm);
    yield* mmput(mm);
  });
  assert.equal(exiting.ok, true, exiting.bug?.message);
  assert.equal(users, 0);
  assert.equal(present, true, 'the entries were still there at the revocation');

  const live = run(function* (m) {
    const base = m.allocDevicePfns(2);
    const mm = m.createMm();
    yield* mapDevice(mm, deviceFile(m, 'bar0', base), 2);
    const other = m.createMm();
    yield* mapDevice(other, deviceFile(m, 'bar1', base), 1);
    const sub = new MmuNotifier({
      *release() {
        m.revokeDevicePfns(base, 2, null);
      },
    });
    yield* mmuNotifierRegister(sub, mm);
    yield* mmput(mm);
  });
  assert.ok(isKernelBug(live.bug, 'revocation'), live.bug?.message);
  assert.match(live.bug!.detail, /while mm2 0x[0-9a-f]+ still maps it$/, 'the live mm');
});

test('io-mappings: a tracked VMA freed without being unlinked is a tracking violation', () => {
  const emitTrack = (k: Kernel, mm: Mm, addr: number, op: 'link' | 'unlink') =>
    k.trace.emit('vma-track', { tracker: 'ufile1', mm: mm.id, vma: mm.findVma(addr)!.id, op });
  let vmaId = -1;
  const leaked = run(function* (m, _o, k) {
    const mm = m.createMm();
    const a = yield* mapDevice(mm, deviceFile(m, 'bar0', m.allocDevicePfns(2)), 2);
    vmaId = mm.findVma(a)!.id;
    emitTrack(k, mm, a, 'link');
    yield* munmap(mm, a, 2 * P);
  });
  assert.ok(isKernelBug(leaked.bug, 'tracking'), leaked.bug?.message);
  assert.equal(leaked.bug!.detail, `VMA ${vmaId} of mm1 is freed while ufile1 still tracks it`);
  assert.ok(leaked.bug!.held.includes('mm1.mmap_lock'), 'freed under mmap_lock');

  const atExit = run(function* (m, _o, k) {
    const mm = m.createMm();
    const a = yield* mapDevice(mm, deviceFile(m, 'bar0', m.allocDevicePfns(2)), 2);
    emitTrack(k, mm, a, 'link');
    yield* mmput(mm);
  });
  assert.ok(isKernelBug(atExit.bug, 'tracking'), atExit.bug?.message);

  const fine = run(function* (m, _o, k) {
    const mm = m.createMm();
    const file = deviceFile(m, 'bar0', m.allocDevicePfns(2));
    const a = yield* mapDevice(mm, file, 1);
    const b = yield* mapDevice(mm, file, 1);
    emitTrack(k, mm, a, 'link');
    emitTrack(k, mm, b, 'link');
    emitTrack(k, mm, a, 'unlink');
    yield* munmap(mm, a, P);
    emitTrack(k, mm, b, 'unlink');
    yield* mmput(mm);
  });
  assert.equal(fine.ok, true, fine.bug?.message);
  assert.equal(fine.oracle.checks, 2 + 4, 'two pte-sets, and each link and unlink');
});

test('io-mappings: installOracles subscribes it and registers its rules', () => {
  const k = new Kernel();
  const m = new Machine(k, { frames: 16 });
  const oracles = installOracles(k, m, { leaks: false });
  k.spawn('t', function* () {
    const base = m.allocDevicePfns(1);
    const mm = m.createMm();
    yield* mapDevice(mm, deviceFile(m, 'bar0', base), 1);
    m.revokeDevicePfns(base, 1, null);
  });
  const r = k.run();
  assert.ok(isKernelBug(r.bug, 'revocation'), r.bug?.message);
  assert.ok(oracles.ioMappings.checks >= 2);
  const entry = registeredOracles(k).find((o) => o.name === 'io-mappings');
  assert.deepEqual(entry?.rules, ['revocation', 'machine-check', 'tracking']);
  assert.equal(entry?.checks(), oracles.ioMappings.checks);
});

/** A world whose trace feeds one lifetime oracle. */
function runLifetime(body: () => void) {
  const k = new Kernel();
  const oracle = new LifetimeOracle();
  k.trace.subscribe(oracle.onEvent);
  k.spawn('t', function* () {
    body();
    yield;
  });
  return { ...k.run(), oracle };
}

test('lifetime: a lookup that finds an object after it was revoked is a violation', () => {
  const r = runLifetime(() => {
    const o = new Tracked('mmap-entry 0x1000');
    o.get(true);
    o.put();
    o.revoke();
    o.get(true);
  });
  assert.ok(isKernelBug(r.bug, 'lifetime'), r.bug?.message);
  assert.equal(r.bug!.detail, 'mmap-entry 0x1000: a lookup found it after it was revoked');
  assert.equal(r.bug!.task, 't');
});

test('lifetime: after a revoke, references already held may be copied and dropped, and other objects looked up', () => {
  let o: Tracked | null = null;
  const r = runLifetime(() => {
    o = new Tracked('mmap-entry 0x1000');
    const other = new Tracked('mmap-entry 0x2000');
    o.get(true);
    o.revoke();
    o.get(false);
    o.put();
    o.put();
    other.get(true);
    other.put();
    o.free();
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(o!.refs, 0);
  assert.equal(o!.freed, true);
  assert.equal(r.oracle.checks, 7, 'every get, put and free is checked');
});
