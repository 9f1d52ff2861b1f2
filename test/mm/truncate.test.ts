import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isErrno } from '../../src/index.ts';
import type { Co } from '../../src/kernel/task.ts';
import { MAP_PRIVATE, MAP_SHARED } from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import type { File } from '../../src/mm/file.ts';
import type { Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { truncateFile, unmapMappingRange } from '../../src/mm/truncate.ts';
import { assertPaired, eventsOf, P, probe, RW, runMm, type Seen } from './helpers.ts';

/** A file of `pages` pages whose page i holds the integer i + 1 at offset 0 and at 2000. */
function* dataFile(m: Machine, pages: number): Co<File> {
  const f = m.createFile('data', { size: pages * P });
  for (let i = 0; i < pages; i++) {
    yield* f.pwrite(i * P, new Uint8Array([i + 1, 0, 0, 0]));
    yield* f.pwrite(i * P + 2000, new Uint8Array([i + 1, 0, 0, 0]));
  }
  for (const page of f.cache.values()) f.writeback(page);
  return f;
}

function* expectSigbus(mm: Mm, addr: number): Co {
  try {
    yield* cpuReadU32(mm, addr);
    assert.fail('expected SIGBUS past EOF');
  } catch (e) {
    assert.ok(isErrno(e, 'EFAULT'), String(e));
    assert.match((e as Error).message, /SIGBUS/);
  }
}

test('truncate unmaps every mapping past the new size (COW copies too), drops the pages and zeroes the partial tail', () => {
  const seen: (Seen & { iMmapHeld: boolean })[] = [];
  let s = 0;
  let p = 0;
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const f = yield* dataFile(m, 4);
    s = yield* mmap(mm, { len: 4 * P, prot: RW, flags: MAP_SHARED, file: f });
    p = yield* mmap(mm, { len: 4 * P, prot: RW, flags: MAP_PRIVATE, file: f });
    for (let i = 0; i < 4; i++) assert.equal(yield* cpuReadU32(mm, s + i * P), i + 1);
    yield* cpuWriteU32(mm, p + 3 * P, 44); // a private COW copy past the future EOF
    yield* cpuReadU32(mm, p + P);
    yield* probe(mm, seen, () => ({ iMmapHeld: f.iMmapLock.isLockedByCurrent() }));
    const cached = [...f.cache.values()];
    yield* truncateFile(f, P + 1000);
    assert.equal(f.size, P + 1000);
    assert.deepEqual([...f.cache.keys()].sort(), [0, 1]);
    assert.deepEqual([...f.disk.keys()].sort(), [0, 1]);
    assert.deepEqual(
      mm.addressesIn(s, s + 4 * P).map((x) => (x - s) / P),
      [0, 1],
    );
    assert.deepEqual(
      mm.addressesIn(p, p + 4 * P).map((x) => (x - p) / P),
      [1],
    );
    for (const page of cached.slice(2)) assert.equal(page.kind, 'free');
    assert.equal(yield* cpuReadU32(mm, s + P), 2, 'data before the new size stays');
    assert.equal(yield* cpuReadU32(mm, s + P + 2000), 0, 'the tail of the partial page is zeroed');
    assert.equal((yield* f.pread(P + 2000, 4)).length, 0, 'pread stops at EOF');
    yield* expectSigbus(mm, s + 2 * P);
    yield* expectSigbus(mm, p + 3 * P);
    // Growing back gives zeros, not the old contents.
    yield* truncateFile(f, 4 * P);
    assert.equal(yield* cpuReadU32(mm, s + 3 * P), 0);
    assert.equal(yield* cpuReadU32(mm, p + 3 * P), 0);
    assert.equal(yield* cpuReadU32(mm, s + P + 2000), 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assertPaired(r.rec);
  // Two unmap_mapping_range() passes (before and after dropping the pages), one CLEAR per VMA
  // each, under i_mmap_rwsem without mmap_lock or a spinlock.
  const shared = { event: 'CLEAR', start: s + 2 * P, end: s + 4 * P };
  const priv = { event: 'CLEAR', start: p + 2 * P, end: p + 4 * P };
  const ctx = { iMmapHeld: true, mmapHeld: false, mmapWrite: false, atomic: 0 };
  const expected = [shared, priv, shared, priv].map((x) => ({ ...x, ...ctx }));
  assert.deepEqual(seen, expected);
  // Every frame freed by the truncate is freed after a start returned and a TLB flush.
  const ev = r.rec.events;
  const firstDone = ev.findIndex((e) => e.type === 'mmu-start-done');
  const firstFlush = ev.findIndex((e, i) => i > firstDone && e.type === 'tlb-flush');
  const firstFree = ev.findIndex((e, i) => i > firstDone && e.type === 'page-free');
  assert.ok(firstDone >= 0 && firstDone < firstFlush && firstFlush < firstFree);
});

test('unmapMappingRange without even_cows keeps private COW copies', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const f = yield* dataFile(m, 2);
    const p = yield* mmap(mm, { len: 2 * P, prot: RW, flags: MAP_PRIVATE, file: f });
    yield* cpuWriteU32(mm, p, 10);
    yield* cpuReadU32(mm, p + P);
    yield* unmapMappingRange(f, 0, 2 * P, false);
    assert.deepEqual(
      mm.addressesIn(p, p + 2 * P).map((x) => x - p),
      [0],
    );
    assert.equal(yield* cpuReadU32(mm, p), 10);
    yield* unmapMappingRange(f, 0, 0, true);
    assert.equal(mm.pt.size, 0);
    assert.equal(yield* cpuReadU32(mm, p), 1);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assertPaired(r.rec);
});

test('truncate rejects bad input with EINVAL and changes nothing; growing only sets the size', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const f = yield* dataFile(m, 2);
    const ro = m.createFile('ro', { size: P, writable: false });
    const s = yield* mmap(mm, { len: 2 * P, prot: RW, flags: MAP_SHARED, file: f });
    yield* cpuReadU32(mm, s + P);
    for (const size of [-1, 0.5, Number.NaN, 2 ** 60]) {
      try {
        yield* truncateFile(f, size);
        assert.fail(`expected EINVAL for ${size}`);
      } catch (e) {
        assert.ok(isErrno(e, 'EINVAL'), String(e));
      }
    }
    try {
      yield* truncateFile(ro, 0);
      assert.fail('expected EINVAL for a read-only file');
    } catch (e) {
      assert.ok(isErrno(e, 'EINVAL'), String(e));
    }
    assert.deepEqual([f.size, ro.size, f.cache.size, mm.pt.size], [2 * P, P, 2, 1]);
    yield* truncateFile(f, 3 * P);
    assert.deepEqual([f.size, f.cache.size, mm.pt.size], [3 * P, 2, 1]);
    assert.equal(yield* cpuReadU32(mm, s + P), 2);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(eventsOf(r.rec, 'mmu-start').length, 0);
});
