// The refcounted mmap-entry database of the verbs core (rdma_user_mmap_entry_*): offsets are
// given out as the lowest free run in a range, looked up only at an entry's start while the
// driver has not removed it, and kept reserved until the last reference goes, which calls the
// driver's ->mmap_free once; and the mlx5 driver's device memory, mapped and freed in either order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  RdmaUserMmapEntry,
  rdmaUserMmapEntryGet,
  rdmaUserMmapEntryGetPgoff,
  rdmaUserMmapEntryInsert,
  rdmaUserMmapEntryInsertExact,
  rdmaUserMmapEntryInsertRange,
  rdmaUserMmapEntryPut,
  rdmaUserMmapEntryRemove,
} from '../../../src/drivers/rdma/core/ib-core-uverbs.ts';
import type { IbUcontext } from '../../../src/drivers/rdma/core/objects.ts';
import { ibUverbsClose } from '../../../src/drivers/rdma/core/uverbs.ts';
import { ibAllocDm, ibFreeDm, ibMmap } from '../../../src/drivers/rdma/core/verbs.ts';
import { uarOffset } from '../../../src/drivers/rdma/hw/mlx5/mmap.ts';
import type { Co } from '../../../src/index.ts';
import { Errno } from '../../../src/lib/errors.ts';
import { MAP_PRIVATE, MAP_SHARED, VM_READ, VM_SHARED } from '../../../src/mm/constants.ts';
import { munmap } from '../../../src/mm/munmap.ts';
import { exitMm } from '../../../src/mm/process.ts';
import type { Vma } from '../../../src/mm/vma.ts';
import { attempt, P, RW, runIo, runIoClean } from './io-kit.ts';

const U32_MAX = 0xffff_ffff;
/** The mlx5 driver's first entry page offset (MLX5_IB_MMAP_OFFSET_START << 16). */
const MLX5_MIN = 9 << 16;

/** A new entry of `pages` pages (its length one byte short of them, to check the rounding). */
function entry(ctx: IbUcontext, pages: number, name: string): RdmaUserMmapEntry {
  return new RdmaUserMmapEntry(ctx, 0x1000, pages * P - 1, name);
}

/** Inserts `e` with its run starting exactly at `pgoff` (the whole run within [min, max]). */
function place(ctx: IbUcontext, e: RdmaUserMmapEntry, pgoff: number): Co<number> {
  return rdmaUserMmapEntryInsertRange(ctx, e, pgoff, pgoff + e.npages - 1);
}

/** The page offsets of [from, to] and the entry each is stored for (null: free). */
function slots(ctx: IbUcontext, from: number, to: number): (RdmaUserMmapEntry | null)[] {
  const out: (RdmaUserMmapEntry | null)[] = [];
  for (let i = from; i <= to; i++) out.push(ctx.mmapXa.get(i) ?? null);
  return out;
}

/** A VMA as rdma_user_mmap_entry_get() reads it. */
function vmaAt(pgoff: number, pages: number, flags = VM_SHARED | VM_READ): Vma {
  return { flags, pgoff, start: 0x40_0000, end: 0x40_0000 + pages * P } as unknown as Vma;
}

test('insert_range: the driver reference, ceil(len/PAGE_SIZE) pages, the lowest free run from min that fits below max', () => {
  runIoClean(function* ({ ctx }) {
    const a = entry(ctx, 3, 'a');
    assert.equal(a.npages, 3);
    assert.equal(new RdmaUserMmapEntry(ctx, 0, 2 * P, 'two').npages, 2);
    assert.equal(new RdmaUserMmapEntry(ctx, 0, 2 * P + 1, 'three').npages, 3);
    assert.equal(a.refs, 0);
    assert.equal(yield* rdmaUserMmapEntryInsertRange(ctx, a, 100, 200), 100 * P);
    assert.equal(a.refs, 1);
    assert.equal(a.startPgoff, 100);
    assert.deepEqual(slots(ctx, 99, 103), [null, a, a, a, null]);
    // A one-page hole at 103, then b at 104.
    const b = entry(ctx, 1, 'b');
    assert.equal(yield* rdmaUserMmapEntryInsertExact(ctx, b, 104), 104 * P);
    // Two pages do not fit in the hole: the run starts after b.
    const c = entry(ctx, 2, 'c');
    assert.equal(yield* rdmaUserMmapEntryInsertRange(ctx, c, 100, 200), 105 * P);
    assert.equal(c.startPgoff, 105);
    // One page does.
    const d = entry(ctx, 1, 'd');
    assert.equal(yield* rdmaUserMmapEntryInsertRange(ctx, d, 100, 200), 103 * P);
    // min is honoured even when lower offsets are free.
    const e = entry(ctx, 1, 'e');
    assert.equal(yield* rdmaUserMmapEntryInsertRange(ctx, e, 150, 200), 150 * P);
    assert.deepEqual(slots(ctx, 100, 107), [a, a, a, d, b, c, c, null]);
    assert.equal(ctx.mmapXa.get(150), e);
    // [100, 106] is full: nothing of one page fits below 106.
    const f = entry(ctx, 1, 'f');
    const before = ctx.mmapXa.size;
    const err = yield* attempt(() => rdmaUserMmapEntryInsertRange(ctx, f, 100, 106));
    assert.equal(err, 'ENOMEM');
    assert.equal(ctx.mmapXa.size, before);
    // The failed entry is dead (the driver frees it); the failure released umap_lock and
    // the xarray's lock: the next insert goes through.
    assert.equal(f.freed, true);
    const g = entry(ctx, 1, 'g');
    assert.equal(yield* rdmaUserMmapEntryInsertRange(ctx, g, 100, 107), 107 * P);
  });
});

test('ENOMEM is an Errno with code ENOMEM; insert_exact takes only its offset and fails when it is taken', () => {
  runIoClean(function* ({ ctx }) {
    const a = entry(ctx, 1, 'a');
    assert.equal(yield* rdmaUserMmapEntryInsertExact(ctx, a, 42), 42 * P);
    const b = entry(ctx, 1, 'b');
    let thrown: unknown = null;
    try {
      yield* rdmaUserMmapEntryInsertExact(ctx, b, 42);
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof Errno);
    assert.equal(thrown.code, 'ENOMEM');
    // Not the next free offset: only 42 was asked for.
    assert.equal(ctx.mmapXa.get(43), undefined);
    assert.equal(ctx.mmapXa.get(42), a);
    const b2 = entry(ctx, 1, 'b2');
    assert.equal(yield* rdmaUserMmapEntryInsertExact(ctx, b2, 41), 41 * P);
    assert.equal(b2.startPgoff, 41);
    // A run of several pages from an exact offset (only its start must be the offset asked).
    const wide = entry(ctx, 3, 'wide');
    assert.equal(yield* rdmaUserMmapEntryInsertExact(ctx, wide, 1000), 1000 * P);
    assert.deepEqual(slots(ctx, 1000, 1003), [wide, wide, wide, null]);
    // The highest offset whose run does not overflow 32 bits; one page at U32_MAX does.
    const top = entry(ctx, 1, 'top');
    assert.equal(yield* rdmaUserMmapEntryInsertExact(ctx, top, U32_MAX - 1), (U32_MAX - 1) * P);
    assert.equal(ctx.mmapXa.get(U32_MAX - 1), top);
    const over = entry(ctx, 1, 'over');
    assert.equal(yield* attempt(() => rdmaUserMmapEntryInsertExact(ctx, over, U32_MAX)), 'ENOMEM');
  });
});

test('insert uses [0, U32_MAX]: offset 0 first, below the mlx5 doorbell, then the next free run', () => {
  runIoClean(function* ({ ctx }) {
    // The context already holds the driver's doorbell entry at the start of its range.
    assert.equal(uarOffset(ctx), MLX5_MIN * P);
    const a = entry(ctx, 2, 'a');
    assert.equal(yield* rdmaUserMmapEntryInsert(ctx, a), 0);
    assert.equal(a.startPgoff, 0);
    assert.equal(a.refs, 1);
    const b = entry(ctx, 3, 'b');
    assert.equal(yield* rdmaUserMmapEntryInsert(ctx, b), 2 * P);
    // Up to the doorbell page, then past it.
    const c = entry(ctx, MLX5_MIN - 5, 'c');
    assert.equal(yield* rdmaUserMmapEntryInsert(ctx, c), 5 * P);
    const d = entry(ctx, 2, 'd');
    assert.equal(yield* rdmaUserMmapEntryInsert(ctx, d), (MLX5_MIN + 1) * P);
  });
});

test('get_pgoff: a reference at the start of a live entry; null past U32_MAX, inside, when removed, at refs 0', () => {
  runIoClean(function* ({ ctx, mmapFreed }) {
    const a = entry(ctx, 3, 'a');
    yield* place(ctx, a, 7);
    assert.equal(yield* rdmaUserMmapEntryGetPgoff(ctx, 7), a);
    assert.equal(a.refs, 2);
    assert.equal(a.tracked.refs, 2);
    assert.equal(yield* rdmaUserMmapEntryGetPgoff(ctx, 8), null);
    assert.equal(yield* rdmaUserMmapEntryGetPgoff(ctx, 9), null);
    assert.equal(yield* rdmaUserMmapEntryGetPgoff(ctx, 10), null);
    assert.equal(yield* rdmaUserMmapEntryGetPgoff(ctx, 6), null);
    assert.equal(a.refs, 2);
    // An entry at U32_MAX + 1 would be found if the bound were not checked first.
    const high = entry(ctx, 1, 'high');
    ctx.mmapXa.set(U32_MAX + 1, high);
    high.startPgoff = U32_MAX + 1;
    high.refs = 1;
    assert.equal(yield* rdmaUserMmapEntryGetPgoff(ctx, U32_MAX + 1), null);
    assert.equal(high.refs, 1);
    ctx.mmapXa.delete(U32_MAX + 1);
    // An entry whose last reference is being dropped (kref 0, not erased yet) is not revived.
    const dying = entry(ctx, 1, 'dying');
    yield* rdmaUserMmapEntryInsertExact(ctx, dying, 20);
    dying.refs = 0;
    assert.equal(yield* rdmaUserMmapEntryGetPgoff(ctx, 20), null);
    assert.equal(dying.refs, 0);
    assert.equal(dying.tracked.refs, 1);
    dying.refs = 1;
    yield* rdmaUserMmapEntryRemove(dying);
    // Removed by the driver while we still hold a reference: still stored, never found.
    yield* rdmaUserMmapEntryRemove(a);
    assert.equal(a.driverRemoved, true);
    assert.equal(ctx.mmapXa.get(7), a);
    assert.equal(yield* rdmaUserMmapEntryGetPgoff(ctx, 7), null);
    assert.equal(a.refs, 1);
    assert.deepEqual(mmapFreed, [dying]);
    yield* rdmaUserMmapEntryPut(a);
    assert.deepEqual(mmapFreed, [dying, a]);
  });
});

test('get: only a VM_SHARED VMA exactly as long as the entry; a wrong length drops the reference taken', () => {
  runIoClean(function* ({ ctx, mmapFreed }) {
    const a = entry(ctx, 2, 'a');
    yield* place(ctx, a, 30);
    assert.equal(yield* rdmaUserMmapEntryGet(ctx, vmaAt(30, 2, VM_READ)), null);
    assert.equal(a.refs, 1);
    assert.equal(yield* rdmaUserMmapEntryGet(ctx, vmaAt(30, 1)), null);
    assert.equal(a.refs, 1);
    assert.equal(a.tracked.refs, 1);
    assert.equal(yield* rdmaUserMmapEntryGet(ctx, vmaAt(30, 3)), null);
    assert.equal(a.refs, 1);
    assert.equal(yield* rdmaUserMmapEntryGet(ctx, vmaAt(31, 1)), null);
    assert.equal(a.refs, 1);
    assert.equal(a.freed, false);
    assert.deepEqual(mmapFreed, []);
    assert.equal(yield* rdmaUserMmapEntryGet(ctx, vmaAt(30, 2)), a);
    assert.equal(a.refs, 2);
    yield* rdmaUserMmapEntryPut(a);
    assert.equal(a.refs, 1);
    // Once removed the length check never runs: nothing is found.
    yield* rdmaUserMmapEntryRemove(a);
    assert.deepEqual(mmapFreed, [a]);
    assert.equal(yield* rdmaUserMmapEntryGet(ctx, vmaAt(30, 2)), null);
  });
});

test('put: the last reference erases every offset, sets freed and calls ->mmap_free once; until then the offsets stay reserved', () => {
  runIoClean(function* ({ ctx, mmapFreed }) {
    const a = entry(ctx, 3, 'a');
    yield* rdmaUserMmapEntryInsertRange(ctx, a, 50, 60);
    yield* rdmaUserMmapEntryGetPgoff(ctx, 50);
    yield* rdmaUserMmapEntryGetPgoff(ctx, 50);
    assert.equal(a.refs, 3);
    yield* rdmaUserMmapEntryRemove(a);
    yield* rdmaUserMmapEntryPut(a);
    assert.equal(a.refs, 1);
    assert.equal(a.freed, false);
    assert.deepEqual(mmapFreed, []);
    assert.deepEqual(slots(ctx, 50, 52), [a, a, a]);
    // Removed but referenced: a new insert skips its offsets.
    const b = entry(ctx, 1, 'b');
    assert.equal(yield* rdmaUserMmapEntryInsertRange(ctx, b, 50, 60), 53 * P);
    yield* rdmaUserMmapEntryPut(a);
    assert.equal(a.refs, 0);
    assert.equal(a.freed, true);
    assert.equal(a.tracked.freed, true);
    assert.deepEqual(mmapFreed, [a]);
    assert.deepEqual(slots(ctx, 50, 53), [null, null, null, b]);
    // The offsets are free again.
    const c = entry(ctx, 3, 'c');
    assert.equal(yield* rdmaUserMmapEntryInsertRange(ctx, c, 50, 60), 50 * P);
    assert.deepEqual(slots(ctx, 50, 53), [c, c, c, b]);
    assert.deepEqual(mmapFreed, [a]);
  });
});

test('put with no reference left is a WARN, and ->mmap_free is not called again', () => {
  let freedCalls = -1;
  const r = runIo(function* ({ ctx, mmapFreed }) {
    const a = entry(ctx, 1, 'a');
    yield* rdmaUserMmapEntryInsertExact(ctx, a, 3);
    yield* rdmaUserMmapEntryPut(a);
    freedCalls = mmapFreed.length;
    try {
      yield* rdmaUserMmapEntryPut(a);
    } finally {
      freedCalls = mmapFreed.length;
    }
  });
  assert.equal(r.ok, false);
  assert.equal(r.bug?.rule, 'warn');
  assert.match(r.bug?.message ?? '', /no reference/);
  assert.equal(freedCalls, 1);
});

test('remove: driver_removed and the driver reference dropped; a referenced entry stays alive and reserved; remove(null) does nothing', () => {
  runIoClean(function* ({ ctx, mmapFreed }) {
    const sizeBefore = ctx.mmapXa.size;
    yield* rdmaUserMmapEntryRemove(null);
    assert.equal(ctx.mmapXa.size, sizeBefore);
    assert.deepEqual(mmapFreed, []);
    // Only the driver's reference: removal frees it.
    const a = entry(ctx, 2, 'a');
    yield* place(ctx, a, 10);
    yield* rdmaUserMmapEntryRemove(a);
    assert.equal(a.driverRemoved, true);
    assert.equal(a.refs, 0);
    assert.equal(a.freed, true);
    assert.deepEqual(mmapFreed, [a]);
    assert.deepEqual(slots(ctx, 10, 11), [null, null]);
    assert.equal(ctx.mmapXa.size, sizeBefore);
    // Held by someone else: removal leaves it alive and its offsets reserved.
    const b = entry(ctx, 2, 'b');
    yield* place(ctx, b, 10);
    assert.equal(yield* rdmaUserMmapEntryGetPgoff(ctx, 10), b);
    yield* rdmaUserMmapEntryRemove(b);
    assert.equal(b.driverRemoved, true);
    assert.equal(b.refs, 1);
    assert.equal(b.freed, false);
    assert.deepEqual(mmapFreed, [a]);
    assert.deepEqual(slots(ctx, 10, 11), [b, b]);
    assert.equal(
      yield* attempt(() => rdmaUserMmapEntryInsertExact(ctx, entry(ctx, 1, 'x'), 11)),
      'ENOMEM',
    );
    yield* rdmaUserMmapEntryPut(b);
    assert.equal(b.freed, true);
    assert.deepEqual(mmapFreed, [a, b]);
    assert.deepEqual(slots(ctx, 10, 11), [null, null]);
  });
});

test('mlx5 places its entries from 9<<16 on: the doorbell first, then each device-memory allocation at its offset', () => {
  runIoClean(function* ({ ctx }) {
    const uar = ctx.mmapXa.get(MLX5_MIN)!;
    assert.ok(uar instanceof RdmaUserMmapEntry);
    assert.equal(uar.startPgoff, MLX5_MIN);
    assert.equal(uar.npages, 1);
    assert.equal(uar.refs, 1);
    assert.equal(uarOffset(ctx), MLX5_MIN * P);
    // Offsets below the driver's range stay free for others.
    assert.equal(ctx.mmapXa.size, 1);
    const dm = yield* ibAllocDm(ctx, 3);
    assert.equal(dm.entry.startPgoff, MLX5_MIN + 1);
    assert.equal(dm.offset, dm.entry.startPgoff * P);
    assert.equal(dm.entry.npages, 3);
    assert.equal(dm.entry.refs, 1);
    assert.deepEqual(slots(ctx, MLX5_MIN + 1, MLX5_MIN + 4), [dm.entry, dm.entry, dm.entry, null]);
    // A one-page entry the driver did not make: the next allocation goes past it.
    const other = entry(ctx, 1, 'other');
    yield* rdmaUserMmapEntryInsertExact(ctx, other, MLX5_MIN + 5);
    const dm2 = yield* ibAllocDm(ctx, 2);
    assert.equal(dm2.offset, (MLX5_MIN + 6) * P);
    assert.equal(dm2.entry.startPgoff, MLX5_MIN + 6);
    const dm3 = yield* ibAllocDm(ctx, 1);
    assert.equal(dm3.offset, (MLX5_MIN + 4) * P);
  });
});

test('a mapping of device memory holds an entry reference; free_dm then munmap frees it once', () => {
  runIoClean(function* ({ ctx, proc, file, mmapFreed }) {
    const dm = yield* ibAllocDm(ctx, 2);
    const e = dm.entry;
    const addr = yield* ibMmap(proc, file, dm.offset, 2 * P, RW);
    assert.equal(e.refs, 2);
    yield* ibFreeDm(dm);
    assert.equal(e.driverRemoved, true);
    assert.equal(e.refs, 1);
    assert.equal(e.freed, false);
    assert.deepEqual(mmapFreed, []);
    assert.deepEqual(slots(ctx, e.startPgoff, e.startPgoff + 1), [e, e]);
    // No new mapping of removed memory.
    assert.equal(yield* attempt(() => ibMmap(proc, file, dm.offset, 2 * P, RW)), 'EINVAL');
    assert.equal(e.refs, 1);
    yield* munmap(proc.mm!, addr, 2 * P);
    assert.equal(e.refs, 0);
    assert.equal(e.freed, true);
    assert.deepEqual(mmapFreed, [e]);
    assert.deepEqual(slots(ctx, e.startPgoff, e.startPgoff + 1), [null, null]);
  });
});

test('munmap then free_dm frees it once too; a private, short or inner mapping is EINVAL and takes nothing', () => {
  runIoClean(function* ({ ctx, proc, file, mmapFreed }) {
    const dm = yield* ibAllocDm(ctx, 2);
    const e = dm.entry;
    assert.equal(
      yield* attempt(() => ibMmap(proc, file, dm.offset, 2 * P, RW, MAP_PRIVATE)),
      'EINVAL',
    );
    assert.equal(yield* attempt(() => ibMmap(proc, file, dm.offset, P, RW)), 'EINVAL');
    assert.equal(yield* attempt(() => ibMmap(proc, file, dm.offset, 3 * P, RW)), 'EINVAL');
    assert.equal(yield* attempt(() => ibMmap(proc, file, dm.offset + P, P, RW)), 'EINVAL');
    assert.equal(e.refs, 1);
    assert.equal(proc.mm!.vmas.length, 0);
    const addr = yield* ibMmap(proc, file, dm.offset, 2 * P, RW, MAP_SHARED);
    assert.equal(e.refs, 2);
    yield* munmap(proc.mm!, addr, 2 * P);
    assert.equal(e.refs, 1);
    assert.equal(e.freed, false);
    assert.deepEqual(mmapFreed, []);
    yield* ibFreeDm(dm);
    assert.equal(e.refs, 0);
    assert.equal(e.freed, true);
    assert.deepEqual(mmapFreed, [e]);
    assert.equal(ctx.mmapXa.get(e.startPgoff), undefined);
  });
});

test('each piece of a split mapping holds its own reference; the last piece unmapped after free_dm frees it', () => {
  runIoClean(function* ({ ctx, proc, file, mmapFreed }) {
    const dm = yield* ibAllocDm(ctx, 2);
    const e = dm.entry;
    const addr = yield* ibMmap(proc, file, dm.offset, 2 * P, RW);
    yield* munmap(proc.mm!, addr, P);
    assert.equal(e.refs, 2);
    yield* ibFreeDm(dm);
    assert.equal(e.refs, 1);
    assert.deepEqual(mmapFreed, []);
    yield* munmap(proc.mm!, addr + P, P);
    assert.equal(e.refs, 0);
    assert.deepEqual(mmapFreed, [e]);
  });
});

test('with every reference dropped, closing the file and exiting pass the lifetime and leak oracles', () => {
  let freed: RdmaUserMmapEntry[] = [];
  const r = runIo(function* ({ ctx, proc, file, mmapFreed }) {
    const uar = ctx.mmapXa.get(MLX5_MIN)!;
    const kept = yield* ibAllocDm(ctx, 1);
    const dm = yield* ibAllocDm(ctx, 2);
    const addr = yield* ibMmap(proc, file, dm.offset, 2 * P, RW);
    yield* ibFreeDm(dm);
    yield* munmap(proc.mm!, addr, 2 * P);
    yield* ibUverbsClose(file);
    // The close destroyed the remaining device memory and the doorbell.
    freed = [...mmapFreed];
    assert.deepEqual(new Set(mmapFreed), new Set([dm.entry, kept.entry, uar]));
    assert.equal(ctx.mmapXa.size, 0);
    yield* exitMm(proc);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(freed.length, 3);
});

test('a reference never put keeps the offsets in mmap_xa: destroying the context WARNs', () => {
  const r = runIo(function* ({ ctx, file }) {
    const dm = yield* ibAllocDm(ctx, 1);
    assert.equal(yield* rdmaUserMmapEntryGetPgoff(ctx, dm.entry.startPgoff), dm.entry);
    yield* ibUverbsClose(file);
  });
  assert.equal(r.ok, false);
  assert.equal(r.bug?.rule, 'warn');
  assert.match(r.bug?.message ?? '', /1 mmap offsets still in mmap_xa/);
});
