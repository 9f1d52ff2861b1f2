// The web view's model of TLBs: a grid row per (page, cache) filled by 'tlb-fill' and emptied by
// an eviction, by a CPU TLB flush (every CPU TLB of the mm, no IOTLB) or by an IOTLB
// invalidation (that cache only), and the stale ranges where a cached translation disagrees
// with its page's CPU entry. Traces are written by hand on a bus whose step the test sets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TraceBus, type TraceEventMap } from '../../src/kernel/trace.ts';
import { TraceRecorder } from '../../src/kernel/trace-export.ts';
import '../../src/mm/events.ts';
import { buildViewModel, type GridRow, type ViewModel } from '../../src/view/model.ts';

const A = 0x7effffffc000;
const B = A + 0x1000;
const C = A + 0x2000;
const CPU4 = 'cpu4 (process)';
const CPU5 = 'cpu5 (worker)';

/** A hand-written trace: `at(step)` sets the step of the events emitted next. */
function trace() {
  const stamp = { steps: 0, now: 0, currentId: () => 0 };
  const bus = new TraceBus(stamp);
  const rec = new TraceRecorder(bus);
  const t = {
    at(step: number) {
      stamp.steps = step;
      return t;
    },
    emit<K extends keyof TraceEventMap>(type: K, payload: TraceEventMap[K]) {
      bus.emit(type, payload);
      return t;
    },
    pte(mm: number, addr: number, pfn: number, writable = true) {
      return t.emit('pte-set', { mm, addr, pfn, gen: 1, readable: true, writable });
    },
    clear(mm: number, addr: number, pfn: number, to?: 'swap' | 'migration') {
      return t.emit('pte-clear', to ? { mm, addr, pfn, gen: 1, to } : { mm, addr, pfn, gen: 1 });
    },
    fill(tlb: string, mm: number, addr: number, pfn: number, writable = true) {
      const kind = tlb.startsWith('cpu') ? 'cpu' : 'iotlb';
      return t.emit('tlb-fill', { tlb, kind, mm, addr, pfn, gen: 1, writable });
    },
    model(): ViewModel {
      return buildViewModel(rec, [], { title: 't', lines: [] });
    },
  };
  return t;
}

const page = (mm: number, addr: number) => `mm${mm} 0x${addr.toString(16)}`;

function row(m: ViewModel, mm: number, addr: number, owner: string): [number, GridRow] {
  const i = m.rows.findIndex((r) => r.page === page(mm, addr) && r.owner === owner);
  assert.ok(i >= 0, `a row for ${page(mm, addr)} ${owner}`);
  return [i, m.rows[i]!];
}

test('a fill makes a TLB row of its page (CPU TLB and IOTLB), read or write, with the frame', () => {
  const m = trace()
    .at(1)
    .pte(1, A, 7)
    .at(2)
    .fill(CPU4, 1, A, 7)
    .at(3)
    .fill('sva0', 1, A + 8, 7, false)
    .model();
  const [, cpuTlb] = row(m, 1, A, `TLB ${CPU4}`);
  assert.equal(cpuTlb.kind, 'tlb');
  assert.deepEqual(cpuTlb.segments, [
    [0, 0, ''],
    [2, 2, '7.1'],
  ]);
  const [, iotlb] = row(m, 1, A, 'IOTLB sva0');
  assert.equal(iotlb.kind, 'tlb');
  assert.deepEqual(iotlb.segments, [
    [0, 0, ''],
    [3, 1, '7.1'],
  ]);
  assert.deepEqual(m.stale, []);
});

test('an eviction empties only its own cache and page', () => {
  const m = trace()
    .pte(1, A, 7)
    .pte(1, B, 8)
    .at(1)
    .fill(CPU4, 1, A, 7)
    .fill(CPU4, 1, B, 8)
    .fill(CPU5, 1, A, 7)
    .at(4)
    .emit('tlb-drop', { tlb: CPU4, mm: 1, addr: A })
    .model();
  assert.deepEqual(row(m, 1, A, `TLB ${CPU4}`)[1].segments.at(-1), [4, 0, '']);
  assert.deepEqual(row(m, 1, B, `TLB ${CPU4}`)[1].segments.at(-1), [1, 2, '8.1']);
  assert.deepEqual(row(m, 1, A, `TLB ${CPU5}`)[1].segments.at(-1), [1, 2, '7.1']);
});

test('a CPU TLB flush empties the range from every CPU TLB of its mm, and nothing else', () => {
  const m = trace()
    .pte(1, A, 7)
    .pte(1, B, 8)
    .pte(1, C, 9)
    .pte(2, A, 10)
    .at(1)
    .fill(CPU4, 1, A, 7)
    .fill(CPU5, 1, B, 8)
    .fill(CPU5, 1, C, 9)
    .fill('sva0', 1, A, 7)
    .fill(CPU4, 2, A, 10)
    .at(5)
    // A page partly in the range goes whole; C is past it.
    .emit('tlb-flush', { mm: 1, start: A + 100, end: B + 1 })
    .model();
  assert.deepEqual(row(m, 1, A, `TLB ${CPU4}`)[1].segments.at(-1), [5, 0, '']);
  assert.deepEqual(row(m, 1, B, `TLB ${CPU5}`)[1].segments.at(-1), [5, 0, '']);
  assert.deepEqual(row(m, 1, C, `TLB ${CPU5}`)[1].segments.at(-1), [1, 2, '9.1'], 'out of range');
  assert.deepEqual(row(m, 1, A, 'IOTLB sva0')[1].segments.at(-1), [1, 2, '7.1'], 'an IOTLB');
  assert.deepEqual(row(m, 2, A, `TLB ${CPU4}`)[1].segments.at(-1), [1, 2, '10.1'], 'another mm');
});

test('an IOTLB invalidation empties the range of that IOTLB only', () => {
  const m = trace()
    .pte(1, A, 7)
    .pte(1, B, 8)
    .at(1)
    .fill('sva0', 1, A, 7)
    .fill('sva0', 1, B, 8)
    .fill('sva1', 1, A, 7)
    .fill(CPU4, 1, A, 7)
    .at(6)
    .emit('iotlb-flush', { tlb: 'sva0', mm: 1, start: A, end: B })
    .model();
  assert.deepEqual(row(m, 1, A, 'IOTLB sva0')[1].segments.at(-1), [6, 0, '']);
  assert.deepEqual(row(m, 1, B, 'IOTLB sva0')[1].segments.at(-1), [1, 2, '8.1']);
  assert.deepEqual(row(m, 1, A, 'IOTLB sva1')[1].segments.at(-1), [1, 2, '7.1']);
  assert.deepEqual(row(m, 1, A, `TLB ${CPU4}`)[1].segments.at(-1), [1, 2, '7.1']);
});

test('stale ranges: from the PTE change to the flush, for each way a cached translation disagrees', () => {
  const D = A + 0x3000;
  const E = A + 0x4000;
  const F = A + 0x5000;
  const m = trace()
    .pte(1, A, 7)
    .pte(1, B, 8)
    .pte(1, C, 9)
    .pte(1, D, 10)
    .pte(1, E, 11)
    .pte(1, F, 12)
    .at(1)
    .fill(CPU4, 1, A, 7)
    .fill(CPU4, 1, B, 8)
    .fill(CPU4, 1, C, 9)
    .fill('sva0', 1, D, 10)
    .fill(CPU4, 1, E, 11, false)
    .fill(CPU4, 1, F, 12)
    .at(3)
    .clear(1, A, 7) // absent
    .pte(1, B, 13) // another frame
    .clear(1, C, 9, 'swap')
    .clear(1, D, 10, 'migration')
    .pte(1, E, 11, true) // a read-only cached translation of a now writable entry: fine
    .pte(1, F, 12, false) // write-protected (mprotect, COW) while cached writable
    .at(4)
    .pte(1, C, 14, false) // swapped back in elsewhere: still another frame
    .at(6)
    .emit('tlb-flush', { mm: 1, start: A, end: D })
    .at(8)
    .emit('tlb-flush', { mm: 1, start: F, end: F + 0x1000 })
    .at(9)
    .pte(1, A, 15) // A mapped again, cached again: agrees
    .at(10)
    .fill(CPU4, 1, A, 15)
    .at(11)
    .clear(1, A, 15)
    .at(12)
    .emit('note', { text: 'the end' })
    .model();
  const stale = (addr: number, owner: string) => {
    const [i] = row(m, 1, addr, owner);
    return m.stale.filter((s) => s[0] === i).map((s) => [s[1], s[2]]);
  };
  assert.deepEqual(
    stale(A, `TLB ${CPU4}`),
    [
      [3, 6],
      [11, 13],
    ],
    'absent; then never flushed: to the end of the run',
  );
  assert.deepEqual(stale(B, `TLB ${CPU4}`), [[3, 6]], 'another frame');
  assert.deepEqual(stale(C, `TLB ${CPU4}`), [[3, 6]], 'swap, then another frame');
  assert.deepEqual(stale(D, 'IOTLB sva0'), [[3, 13]], 'migration; no IOTLB invalidation');
  assert.deepEqual(stale(E, `TLB ${CPU4}`), [], 'read-only cached, writable entry');
  assert.deepEqual(stale(F, `TLB ${CPU4}`), [[3, 8]], 'writable cached, read-only entry');
  assert.equal(m.lastStep, 12);
  assert.deepEqual(m.incoherent, [], 'TLB rows are never incoherent (orange)');
});

test('a flush in the same step as the PTE change leaves no stale range', () => {
  const m = trace()
    .pte(1, A, 7)
    .at(1)
    .fill(CPU4, 1, A, 7)
    .fill('sva0', 1, A, 7)
    .at(5)
    .clear(1, A, 7)
    .emit('tlb-flush', { mm: 1, start: A, end: A + 0x1000 })
    .emit('iotlb-flush', { tlb: 'sva0', mm: 1, start: A, end: A + 0x1000 })
    .at(8)
    .emit('note', { text: 'later' })
    .model();
  assert.deepEqual(m.stale, []);
  assert.deepEqual(row(m, 1, A, `TLB ${CPU4}`)[1].segments.at(-1), [5, 0, '']);
});

test('device rows keep their incoherent ranges; per page the CPU row, then devices, then TLBs', () => {
  const m = trace()
    .pte(1, A, 7)
    .at(1)
    .fill('sva0', 1, A, 7)
    .fill('cpu10 (b)', 1, A, 7)
    .fill(CPU4, 1, A, 7)
    .emit('dev-map', {
      dev: 'mirror',
      mm: 1,
      addr: A,
      pfn: 7,
      gen: 1,
      writable: true,
      regionWritable: true,
    })
    .at(2)
    .pte(1, B, 8)
    .at(3)
    .clear(1, A, 7)
    .at(5)
    .emit('dev-unmap', { dev: 'mirror', mm: 1, addr: A })
    .emit('tlb-flush', { mm: 1, start: A, end: B })
    .emit('iotlb-flush', { tlb: 'sva0', mm: 1, start: A, end: B })
    .model();
  assert.deepEqual(
    m.rows.map((r) => `${r.page} ${r.owner}`),
    [
      `${page(1, A)} CPU`,
      `${page(1, A)} mirror`,
      `${page(1, A)} TLB ${CPU4}`,
      `${page(1, A)} TLB cpu10 (b)`,
      `${page(1, A)} IOTLB sva0`,
      `${page(1, B)} CPU`,
    ],
  );
  assert.deepEqual(m.incoherent, [[1, 3, 5]]);
  assert.deepEqual(m.stale, [
    [2, 3, 5],
    [3, 3, 5],
    [4, 3, 5],
  ]);
});
