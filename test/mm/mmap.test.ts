import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isErrno } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { eventsOf, runMm } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

test('anonymous memory: reads of untouched pages map the zero page, writes allocate, data round-trips', () => {
  let vals: number[] = [];
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    assert.equal(yield* cpuReadU32(mm, a + PAGE_SIZE), 0);
    assert.equal(mm.pte(a + PAGE_SIZE)?.page, m.phys.zeroPage);
    assert.equal(m.phys.usedFrames, 0);
    yield* cpuWriteU32(mm, a + PAGE_SIZE + 8, 1234);
    yield* cpuWriteU32(mm, a, -5);
    vals = [
      yield* cpuReadU32(mm, a),
      yield* cpuReadU32(mm, a + PAGE_SIZE + 8),
      yield* cpuReadU32(mm, a + 3 * PAGE_SIZE),
    ];
    assert.equal(m.phys.usedFrames, 2);
    yield* munmap(mm, a, 4 * PAGE_SIZE);
    assert.equal(m.phys.usedFrames, 0);
    assert.equal(mm.pt.size, 0);
    assert.equal(mm.vmas.length, 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(vals, [-5, 1234, 0]);
  // The write to the zero-page mapping went through a CLEAR invalidation (wp_page_copy).
  const starts = eventsOf(r.rec, 'mmu-start');
  assert.deepEqual(
    starts.map((e) => e.event),
    ['CLEAR', 'UNMAP'],
  );
});

test('munmap splits VMAs and frees only the pages in range, after one UNMAP invalidation', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 3 * PAGE_SIZE, prot: RW, flags: ANON });
    for (let i = 0; i < 3; i++) yield* cpuWriteU32(mm, a + i * PAGE_SIZE, i + 1);
    yield* munmap(mm, a + PAGE_SIZE, PAGE_SIZE);
    assert.deepEqual(
      mm.vmas.map((v) => [v.start - a, v.end - a]),
      [
        [0, PAGE_SIZE],
        [2 * PAGE_SIZE, 3 * PAGE_SIZE],
      ],
    );
    assert.equal(m.phys.usedFrames, 2);
    assert.equal(yield* cpuReadU32(mm, a + 2 * PAGE_SIZE), 3);
  });
  assert.equal(r.ok, true, r.bug?.message);
  const starts = eventsOf(r.rec, 'mmu-start').filter((e) => e.event === 'UNMAP');
  assert.equal(starts.length, 1);
  const free = r.rec.events.findIndex((e) => e.type === 'page-free');
  const start = r.rec.events.findIndex((e) => e.type === 'mmu-start-done' && e.ok);
  const flush = r.rec.events.findIndex((e) => e.type === 'tlb-flush');
  assert.ok(start < flush && flush < free, 'start returned, then TLB flush, then free');
});

test('access to an unmapped address or without permission is a SIGSEGV-like EFAULT', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: PAGE_SIZE, prot: PROT_READ, flags: ANON });
    for (const [addr, write] of [
      [a + PAGE_SIZE, false],
      [a, true],
    ] as const) {
      try {
        if (write) yield* cpuWriteU32(mm, addr, 1);
        else yield* cpuReadU32(mm, addr);
        assert.fail('expected EFAULT');
      } catch (e) {
        assert.ok(isErrno(e, 'EFAULT'), String(e));
        assert.match((e as Error).message, /SIGSEGV/);
      }
    }
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('MAP_FIXED replaces the old mapping; shared anonymous memory is backed by a shmem file', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    yield* cpuWriteU32(mm, a, 7);
    const b = yield* mmap(mm, {
      addr: a,
      len: PAGE_SIZE,
      prot: RW,
      flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
    });
    assert.equal(b, a);
    assert.equal(yield* cpuReadU32(mm, a), 0);
    assert.equal(mm.findVma(a)?.file?.shmem, true);
    assert.equal(mm.vmas.length, 2);
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('mmap rejects bad arguments with the errno Linux returns and changes nothing', () => {
  const cases: [Record<string, number>, string][] = [
    [{ len: 0, prot: RW, flags: ANON }, 'EINVAL'],
    [{ len: PAGE_SIZE, prot: 8, flags: ANON }, 'EINVAL'],
    [{ len: PAGE_SIZE, prot: RW, flags: MAP_ANONYMOUS }, 'EINVAL'],
    [{ len: PAGE_SIZE, prot: RW, flags: ANON | 0x40000000 }, 'EINVAL'],
    [{ len: PAGE_SIZE, prot: RW, flags: ANON | MAP_FIXED, addr: 0x10001 }, 'EINVAL'],
    [{ len: PAGE_SIZE, prot: RW, flags: ANON | MAP_FIXED, addr: 2 ** 47 }, 'ENOMEM'],
    [{ len: 2 ** 48, prot: RW, flags: ANON }, 'ENOMEM'],
    [{ len: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE }, 'EBADF'],
    [{ len: PAGE_SIZE, prot: RW, flags: ANON, offset: 5 }, 'EINVAL'],
  ];
  const r = runMm(function* (m) {
    const mm = m.createMm();
    for (const [args, code] of cases) {
      try {
        yield* mmap(mm, args as unknown as Parameters<typeof mmap>[1]);
        assert.fail(`expected ${code} for ${JSON.stringify(args)}`);
      } catch (e) {
        assert.ok(isErrno(e, code as 'EINVAL'), `${JSON.stringify(args)}: ${String(e)}`);
      }
    }
    assert.equal(mm.vmas.length, 0);
    for (const [addr, len] of [
      [1, PAGE_SIZE],
      [0, 0],
      [2 ** 47 - PAGE_SIZE, 2 * PAGE_SIZE],
    ]) {
      try {
        yield* munmap(mm, addr!, len!);
        assert.fail('expected EINVAL');
      } catch (e) {
        assert.ok(isErrno(e, 'EINVAL'), String(e));
      }
    }
  });
  assert.equal(r.ok, true, r.bug?.message);
});

test('MAP_HUGETLB is EINVAL that names hugetlbfs (not the unknown-flags error), and maps nothing', () => {
  let message = '';
  const r = runMm(function* (m) {
    const mm = m.createMm();
    try {
      yield* mmap(mm, {
        len: 2 * 1024 * 1024,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
      });
    } catch (e) {
      assert.ok(isErrno(e, 'EINVAL'), String(e));
      message = (e as Error).message;
    }
    assert.equal(mm.vmas.length, 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.match(message, /MAP_HUGETLB needs hugetlbfs/);
  assert.doesNotMatch(message, /MAP_KNOWN/);
});
