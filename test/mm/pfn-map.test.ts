// Device frames without struct pages: remap_pfn_range() and zap_vma_ptes() (src/mm/pfn-map.ts),
// the file references VMAs hold (mmap, split, fork, mremap take one; removing a VMA drops it and
// a last ->release runs later in a task of its own), Machine.revokeDevicePfns()'s trace event,
// the write fault on a read-only shared pfn entry (wp_pfn_shared) and the SIGBUS helpers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Co, isErrno } from '../../src/index.ts';
import { current } from '../../src/kernel/kernel.ts';
import { Errno, type ErrnoCode } from '../../src/lib/errors.ts';
import {
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_IO,
  VM_PFNMAP,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { isSigbus, segv, sigbus } from '../../src/mm/fault.ts';
import { fork } from '../../src/mm/fork.ts';
import { DEVICE_PFN_BASE, type Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mprotect } from '../../src/mm/mprotect.ts';
import { mremap } from '../../src/mm/mremap.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { remapPfnRange, zapVmaPtes } from '../../src/mm/pfn-map.ts';
import type { Vma } from '../../src/mm/vma.ts';
import { ANON, eventsOf, P, probe, RW, runMm, type Seen, snapshot } from './helpers.ts';

const PFNMAP_FLAGS = VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;

interface Release {
  task: string;
  held: string[];
  refs: number;
}

/**
 * A device file exposing `pages` device frames: ->mmap maps the whole VMA at once with
 * remap_pfn_range() from the first frame, ->release records the task it runs in, the locks that
 * task holds and the count left. Like a driver's file after open(), it starts with the
 * descriptor's reference.
 */
function pfnDevice(m: Machine, name = 'pfndev', pages = 4) {
  const base = m.allocDevicePfns(pages);
  const releases: Release[] = [];
  const file = m.createFile(name, {
    size: pages * P,
    ops: {
      *mmap(_f, vma) {
        yield* remapPfnRange(vma, vma.start, base, vma.end - vma.start);
      },
      *release(f) {
        const t = current();
        releases.push({ task: t.name, held: t.heldNames(), refs: f.refs });
      },
    },
  });
  file.get();
  return { base, file, releases };
}

/** Runs `body` and returns the Errno it throws, failing unless it throws one with `code`. */
function* expectErrno(code: ErrnoCode, body: Co<unknown>): Co<Errno> {
  try {
    yield* body;
  } catch (e) {
    assert.ok(isErrno(e, code), `expected ${code}, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected ${code}`);
}

/** A shared mapping of a plain file (no ->mmap): a VMA to call remap_pfn_range() on directly. */
function* plainVma(m: Machine, mm: Mm, pages: number): Co<Vma> {
  const file = m.createFile('plain', { size: pages * P });
  const a = yield* mmap(mm, { len: pages * P, prot: RW, flags: MAP_SHARED, file });
  return mm.findVma(a)!;
}

function readDevice(m: Machine, pfn: number): number {
  const b = new Uint8Array(4);
  m.deviceMemory(pfn).read(0, b, 0, 4);
  return b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24);
}

test('remap_pfn_range from ->mmap fills every entry of the VMA at once, with consecutive device pfns', () => {
  let base = -1;
  let mmId = -1;
  let start = -1;
  const r = runMm(function* (m) {
    const d = pfnDevice(m);
    base = d.base;
    const mm = m.createMm();
    mmId = mm.id;
    const a = yield* mmap(mm, { len: 4 * P, prot: RW, flags: MAP_SHARED, file: d.file });
    start = a;
    const vma = mm.findVma(a)!;
    assert.equal(
      vma.flags & PFNMAP_FLAGS,
      PFNMAP_FLAGS,
      'VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP',
    );
    assert.deepEqual(mm.addressesIn(a, a + 4 * P), [a, a + P, a + 2 * P, a + 3 * P]);
    for (let i = 0; i < 4; i++) {
      const pte = mm.pte(a + i * P)!;
      assert.deepEqual(
        [pte.kind, pte.page, pte.pfn, pte.readable, pte.writable, pte.dirty],
        ['pfn', null, d.base + i, true, true, false],
        `entry ${i}`,
      );
    }
    // The CPU reaches device memory through the entries without faulting.
    yield* cpuWriteU32(mm, a + 2 * P, 99);
    assert.equal(readDevice(m, d.base + 2), 99);
    assert.equal(yield* cpuReadU32(mm, a + 2 * P), 99);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(base, DEVICE_PFN_BASE, 'the first device frames of the first machine');
  assert.equal(eventsOf(r.rec, 'cpu-fault').length, 0, 'nothing was left to fault in');
  assert.deepEqual(
    eventsOf(r.rec, 'pte-set').map((e) => [e.mm, e.addr, e.pfn, e.gen, e.writable]),
    [0, 1, 2, 3].map((i) => [mmId, start + i * P, base + i, 0, true]),
  );
  assert.deepEqual(
    eventsOf(r.rec, 'cpu-access').map((e) => [e.pfn, e.write]),
    [
      [base + 2, true],
      [base + 2, false],
    ],
  );
});

test('remap_pfn_range maps only the range asked for, and entries are writable only in a shared writable VMA', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const vma = yield* plainVma(m, mm, 4);
    const pfn = m.allocDevicePfns(2);
    yield* mm.mmapLock.downWrite();
    yield* remapPfnRange(vma, vma.start + P, pfn, 2 * P);
    mm.mmapLock.upWrite();
    assert.deepEqual(mm.addressesIn(vma.start, vma.end), [vma.start + P, vma.start + 2 * P]);
    assert.deepEqual([mm.pte(vma.start + P)!.pfn, mm.pte(vma.start + 2 * P)!.pfn], [pfn, pfn + 1]);
    assert.equal(vma.flags & PFNMAP_FLAGS, PFNMAP_FLAGS);
  });
  assert.equal(r.ok, true, r.bug?.message);

  const cases: [string, number, number, boolean, boolean][] = [
    ['shared read-write', RW, MAP_SHARED, true, true],
    ['shared read-only', PROT_READ, MAP_SHARED, true, false],
    ['private read-write', RW, MAP_PRIVATE, true, false],
  ];
  for (const [name, prot, flags, readable, writable] of cases) {
    const c = runMm(function* (m) {
      const d = pfnDevice(m);
      const mm = m.createMm();
      const a = yield* mmap(mm, { len: 2 * P, prot, flags, file: d.file });
      assert.equal(mm.findVma(a)!.flags & PFNMAP_FLAGS, PFNMAP_FLAGS, name);
      for (const addr of [a, a + P]) {
        const pte = mm.pte(addr)!;
        assert.equal(pte.kind, 'pfn', name);
        assert.deepEqual([pte.readable, pte.writable], [readable, writable], name);
      }
    });
    assert.equal(c.ok, true, `${name}: ${c.bug?.message}`);
  }
});

test('remap_pfn_range: EINVAL for an unaligned, empty or out-of-VMA range and for a bad pfn, changing nothing', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const vma = yield* plainVma(m, mm, 4);
    const a = vma.start;
    const pfn = m.allocDevicePfns(4);
    const flags = vma.flags;
    const cases: [string, number, number, number][] = [
      ['unaligned address', a + 1, pfn, P],
      ['unaligned size', a, pfn, P + 1],
      ['zero size', a, pfn, 0],
      ['negative size', a, pfn, -P],
      ['starts below the VMA', a - P, pfn, 2 * P],
      ['ends past the VMA', a + 3 * P, pfn, 2 * P],
      ['entirely past the VMA', a + 4 * P, pfn, P],
      ['negative pfn', a, -1, P],
      ['fractional pfn', a, pfn + 0.5, P],
      ['NaN pfn', a, Number.NaN, P],
      ['unsafe pfn', a, 2 ** 53, P],
    ];
    yield* mm.mmapLock.downWrite();
    for (const [name, addr, p, size] of cases) {
      const e = yield* expectErrno('EINVAL', remapPfnRange(vma, addr, p, size));
      assert.match(e.message, /remap_pfn_range: /, name);
    }
    mm.mmapLock.upWrite();
    assert.deepEqual(mm.addressesIn(0, 2 ** 47), [], 'no entry was set');
    assert.equal(vma.flags, flags, 'the VMA flags are untouched');
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(eventsOf(r.rec, 'pte-set').length, 0);
});

test('remap_pfn_range: EAGAIN when an entry of the range is already present, and no entry is set', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const vma = yield* plainVma(m, mm, 4);
    const a = vma.start;
    const pfn = m.allocDevicePfns(8);
    yield* mm.mmapLock.downWrite();
    yield* remapPfnRange(vma, a + P, pfn + 5, P);
    const before = mm.pte(a + P);
    const e = yield* expectErrno('EAGAIN', remapPfnRange(vma, a, pfn, 3 * P));
    assert.match(e.message, /already mapped/);
    mm.mmapLock.upWrite();
    assert.deepEqual(mm.addressesIn(a, a + 4 * P), [a + P], 'no partial mapping');
    assert.equal(mm.pte(a + P), before, 'the present entry is left as it was');
    assert.equal(before!.pfn, pfn + 5);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(eventsOf(r.rec, 'pte-set').length, 1);
});

test('zap_vma_ptes clears the entries of the range with one CLEAR invalidation and keeps the VMA', () => {
  let base = -1;
  const seen: Seen[] = [];
  const r = runMm(function* (m) {
    const d = pfnDevice(m);
    base = d.base;
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 4 * P, prot: RW, flags: MAP_SHARED, file: d.file });
    yield* probe(mm, seen);
    const vma = mm.findVma(a)!;
    yield* mm.mmapLock.downRead();
    yield* zapVmaPtes(vma, a + P, 2 * P);
    mm.mmapLock.upRead();
    assert.deepEqual(seen, [
      {
        event: 'CLEAR',
        start: a + P,
        end: a + 3 * P,
        mmapHeld: true,
        mmapWrite: false,
        atomic: 0,
      },
    ]);
    assert.deepEqual(mm.addressesIn(a, a + 4 * P), [a, a + 3 * P]);
    assert.equal(mm.findVma(a + P), vma, 'the VMA stays');
    assert.equal(vma.flags & PFNMAP_FLAGS, PFNMAP_FLAGS);
    // With no ->fault, a zapped page of a VM_PFNMAP VMA cannot come back: SIGSEGV.
    const e = yield* expectErrno('EFAULT', cpuReadU32(mm, a + P));
    assert.match(e.message, /SIGSEGV .*VM_IO\/VM_PFNMAP without ->fault/);
    assert.equal(isSigbus(e), false);
    assert.equal(yield* cpuReadU32(mm, a + 3 * P), 0, 'the entries outside the range still work');
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(
    eventsOf(r.rec, 'pte-clear').map((e) => e.pfn),
    [base + 1, base + 2],
  );
  assert.equal(eventsOf(r.rec, 'mmu-start').length, 1);
});

test('zap_vma_ptes does nothing on a VMA without VM_PFNMAP', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const anon = yield* mmap(mm, { len: 2 * P, prot: RW, flags: ANON });
    yield* cpuWriteU32(mm, anon, 7);
    const file = yield* plainVma(m, mm, 2);
    yield* cpuWriteU32(mm, file.start, 8);
    const before = snapshot(mm);
    yield* mm.mmapLock.downRead();
    yield* zapVmaPtes(mm.findVma(anon)!, anon, 2 * P);
    yield* zapVmaPtes(file, file.start, 2 * P);
    mm.mmapLock.upRead();
    assert.equal(snapshot(mm), before);
    assert.equal(yield* cpuReadU32(mm, anon), 7);
    assert.equal(yield* cpuReadU32(mm, file.start), 8);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(eventsOf(r.rec, 'mmu-start').length, 0, 'no invalidation');
  assert.equal(eventsOf(r.rec, 'pte-clear').length, 0);
});

test('zap_vma_ptes warns without mmap_lock and on a range outside the VMA', () => {
  const unlocked = runMm(function* (m) {
    const d = pfnDevice(m);
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * P, prot: RW, flags: MAP_SHARED, file: d.file });
    yield* zapVmaPtes(mm.findVma(a)!, a, 2 * P);
  });
  assert.equal(unlocked.bug?.rule, 'warn', unlocked.bug?.message);
  assert.match(unlocked.bug!.message, /zap_vma_ptes without mmap_lock held/);
  const outside = runMm(function* (m) {
    const d = pfnDevice(m);
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * P, prot: RW, flags: MAP_SHARED, file: d.file });
    yield* mm.mmapLock.downRead();
    yield* zapVmaPtes(mm.findVma(a)!, a, 3 * P);
  });
  assert.equal(outside.bug?.rule, 'warn', outside.bug?.message);
  assert.match(outside.bug!.message, /zap_vma_ptes: \[0x[0-9a-f]+, \+12288\) is outside/);
});

test('file references: mmap, split, fork and mremap each take one per VMA; removing a VMA drops it', () => {
  let dev: ReturnType<typeof pfnDevice> | null = null;
  const r = runMm(function* (m) {
    const d = pfnDevice(m);
    dev = d;
    const f = d.file;
    /** The descriptor's reference plus one per VMA mapping the file. */
    const balanced = (what: string) => assert.equal(f.refs, 1 + f.mappings.size, what);
    assert.equal(f.refs, 1, 'the descriptor');
    const parent = m.createMm();
    const a = yield* mmap(parent, { len: 4 * P, prot: RW, flags: MAP_SHARED, file: f });
    assert.equal(f.refs, 2);
    balanced('mmap');
    // Unmapping the second page splits twice (+2) and removes the middle VMA (-1).
    yield* munmap(parent, a + P, P);
    assert.equal(parent.vmas.length, 2);
    assert.equal(f.refs, 3);
    balanced('split + munmap');
    const child = yield* fork(parent);
    assert.equal(f.refs, 5);
    balanced('fork');
    const to = a + 64 * P;
    yield* mremap(child, a + 2 * P, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    assert.equal(f.refs, 5, 'the moved VMA took one, the old one dropped its');
    balanced('mremap');
    assert.equal(child.pte(to + P)!.pfn, d.base + 3, 'the entries moved with the VMA');
    yield* mmput(child);
    assert.equal(f.refs, 3);
    yield* mmput(parent);
    assert.equal(f.refs, 1);
    balanced('exit');
    // A dup()ed descriptor: closing one of the two releases nothing.
    f.get();
    yield* f.put();
    assert.equal(f.refs, 1);
    for (let i = 0; i < 3; i++) yield;
    assert.deepEqual(d.releases, [], 'the descriptor still holds the file');
    // Closing the descriptor drops the last reference: ->release runs now, in this task.
    yield* f.put();
    assert.deepEqual(d.releases, [{ task: 'main', held: [], refs: 0 }]);
    const e = yield* expectErrno('EBADF', f.put());
    assert.match(e.message, /fput of pfndev, which has no reference/);
    assert.throws(
      () => f.putDeferred(),
      (x) => isErrno(x, 'EBADF'),
    );
    assert.equal(d.releases.length, 1, 'released once');
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(dev!.releases.length, 1);
  assert.equal(
    r.rec.events.filter((e) => e.type === 'spawn' && e.name.startsWith('fput(')).length,
    0,
    'no deferred fput task: the VMAs went before the descriptor',
  );
});

test('file references: a failed ->mmap takes none', () => {
  let calls = 0;
  const r = runMm(function* (m) {
    const f = m.createFile('refuses', {
      size: P,
      ops: {
        *mmap() {
          throw new Errno('ENODEV', 'no such mapping');
        },
        *release() {
          calls++;
        },
      },
    });
    f.get();
    const mm = m.createMm();
    yield* expectErrno('ENODEV', mmap(mm, { len: P, prot: RW, flags: MAP_SHARED, file: f }));
    assert.equal(f.refs, 1);
    assert.equal(f.mappings.size, 0);
    assert.equal(mm.vmas.length, 0);
    yield* f.put();
    assert.equal(calls, 1);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('a ->mmap that fails after remap_pfn_range leaves no entry behind (unmap_region)', () => {
  const r = runMm(function* (m) {
    const base = m.allocDevicePfns(1);
    const f = m.createFile('half', {
      size: P,
      ops: {
        *mmap(_f, vma) {
          yield* remapPfnRange(vma, vma.start, base, P);
          throw new Errno('EINVAL', 'refused after mapping');
        },
      },
    });
    const mm = m.createMm();
    yield* expectErrno('EINVAL', mmap(mm, { len: P, prot: RW, flags: MAP_SHARED, file: f }));
    assert.equal(mm.addressesIn(0, Number.MAX_SAFE_INTEGER).length, 0);
    // The next mapping at that address is an ordinary one: nothing reaches the device.
    const at = yield* mmap(mm, { len: P, prot: RW, flags: ANON });
    yield* cpuWriteU32(mm, at, 5);
    assert.equal(readDevice(m, base), 0);
    yield* mmput(mm);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('file references: the last one dropped by a VMA releases the file later, in a task of its own, not under mmap_lock', () => {
  let dev: ReturnType<typeof pfnDevice> | null = null;
  const r = runMm(function* (m) {
    const d = pfnDevice(m);
    dev = d;
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * P, prot: RW, flags: MAP_SHARED, file: d.file });
    const other = m.createMm();
    yield* mmap(other, { len: P, prot: RW, flags: MAP_SHARED, file: d.file });
    // The descriptor is closed while the VMAs still hold the file: no release.
    yield* d.file.put();
    assert.equal(d.file.refs, 2);
    yield* munmap(mm, a, 2 * P);
    assert.equal(d.file.refs, 1);
    for (let i = 0; i < 3; i++) yield;
    assert.deepEqual(d.releases, [], 'another VMA still holds the file');
    // The exit removes the last VMA under mmap_lock (write): the release is only queued.
    yield* mmput(other);
    assert.equal(d.file.refs, 0);
    assert.deepEqual(d.releases, [], 'not run synchronously by remove_vma');
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(dev!.releases, [{ task: 'fput(pfndev)', held: [], refs: 0 }]);
  const spawns = r.rec.events.filter((e) => e.type === 'spawn' && e.name === 'fput(pfndev)');
  assert.equal(spawns.length, 1, 'one deferred fput');
});

test('Machine.revokeDevicePfns emits pfn-revoke with the frames and the file name (null: device gone)', () => {
  let base = -1;
  const r = runMm(function* (m) {
    const d = pfnDevice(m, 'bar0');
    base = d.base;
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * P, prot: RW, flags: MAP_SHARED, file: d.file });
    m.revokeDevicePfns(d.base, 4, d.file);
    m.revokeDevicePfns(d.base + 1, 2, null);
    // It only announces the revocation: taking the entries away is the driver's job.
    assert.deepEqual(mm.addressesIn(a, a + 2 * P), [a, a + P]);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(
    eventsOf(r.rec, 'pfn-revoke').map((e) => ({ first: e.first, count: e.count, file: e.file })),
    [
      { first: base, count: 4, file: 'bar0' },
      { first: base + 1, count: 2, file: null },
    ],
  );
  assert.equal(eventsOf(r.rec, 'pte-clear').length, 0);
});

test('a write fault on a read-only entry of a shared writable pfn mapping makes the entry writable in place', () => {
  let base = -1;
  const r = runMm(function* (m) {
    const d = pfnDevice(m);
    base = d.base;
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * P, prot: RW, flags: MAP_SHARED, file: d.file });
    yield* mprotect(mm, a, 2 * P, PROT_READ);
    yield* mprotect(mm, a, 2 * P, RW);
    const ro = mm.pte(a + P)!;
    assert.deepEqual([ro.kind, ro.writable], ['pfn', false], 'mprotect left it read-only');
    yield* cpuWriteU32(mm, a + P, 1234);
    const rw = mm.pte(a + P)!;
    assert.notEqual(rw, ro, 'a new entry (pte_same() sees the change)');
    assert.deepEqual([rw.kind, rw.pfn, rw.readable, rw.writable], ['pfn', d.base + 1, true, true]);
    assert.equal(readDevice(m, d.base + 1), 1234, 'the write reached device memory');
    assert.equal(mm.pte(a)!.writable, false, 'the other entry was not touched');
  });
  assert.equal(r.ok, true, r.bug?.message);
  const faults = eventsOf(r.rec, 'cpu-fault');
  assert.equal(faults.length, 1);
  assert.equal(faults[0]!.write, true);
  const last = eventsOf(r.rec, 'pte-set').at(-1)!;
  assert.deepEqual([last.pfn, last.writable], [base + 1, true]);
  assert.equal(eventsOf(r.rec, 'mmu-start').length, 2, 'only the two mprotects invalidated');
});

test('a write to a private writable pfn mapping is a SIGSEGV: there is no page to copy', () => {
  const r = runMm(function* (m) {
    const d = pfnDevice(m);
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: P, prot: RW, flags: MAP_PRIVATE, file: d.file });
    assert.equal(mm.pte(a)!.writable, false);
    const e = yield* expectErrno('EFAULT', cpuWriteU32(mm, a, 1));
    assert.match(e.message, /SIGSEGV at 0x[0-9a-f]+: write to a read-only device mapping/);
    assert.equal(isSigbus(e), false);
    assert.equal(readDevice(m, d.base), 0);
    assert.equal(mm.pte(a)!.writable, false);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('sigbus() makes an EFAULT that isSigbus() recognises, and a fault past EOF raises one', () => {
  const e = sigbus(0x12000, 'no backing');
  assert.ok(e instanceof Errno);
  assert.equal(e.code, 'EFAULT');
  assert.equal(e.message, 'EFAULT: SIGBUS at 0x12000: no backing');
  assert.equal(isSigbus(e), true);
  assert.equal(isSigbus(segv(0x12000, 'no VMA')), false);
  assert.equal(isSigbus(segv(0x12000, 'not a SIGBUS')), false, 'SIGBUS must be the signal');
  assert.equal(isSigbus(new Errno('EIO', 'SIGBUS at 0x0: x')), false);
  assert.equal(isSigbus(new Error('EFAULT: SIGBUS at 0x0: x')), false);
  assert.equal(isSigbus(null), false);
  assert.equal(isSigbus('EFAULT: SIGBUS'), false);
  const r = runMm(function* (m) {
    const file = m.createFile('short', { size: P });
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * P, prot: RW, flags: MAP_SHARED, file });
    assert.equal(yield* cpuReadU32(mm, a), 0, 'the page inside the file');
    const past = yield* expectErrno('EFAULT', cpuReadU32(mm, a + P));
    assert.equal(isSigbus(past), true, past.message);
    assert.match(past.message, /beyond the end of short/);
  });
  assert.equal(r.ok, true, r.bug?.message);
});
