import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isKernelBug } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { fork } from '../../src/mm/fork.ts';
import { mmget, mmgetNotZero } from '../../src/mm/mm-refs.ts';
import { mmap } from '../../src/mm/mmap.ts';
import {
  mmuNotifierPut,
  mmuNotifierRegister,
  mmuNotifierSynchronize,
} from '../../src/mm/mmu-notifier-register.ts';
import { MmuNotifier } from '../../src/mm/mmu-notifier-types.ts';
import { shrinkMemory } from '../../src/mm/reclaim.ts';
import { eventsOf, runMm } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

test('exit: ->release runs first, while the notifier is still linked and the pages mapped', () => {
  const seen = { hashed: false, rss: 0, releases: 0, startsAfterRelease: [] as string[] };
  const r = runMm(function* (m) {
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 3 * PAGE_SIZE, prot: RW, flags: ANON });
    for (let i = 0; i < 3; i++) yield* cpuWriteU32(mm, a + i * PAGE_SIZE, i);
    const sub: MmuNotifier = new MmuNotifier({
      *release(s, m2) {
        seen.releases++;
        seen.hashed = s.hashed && m2.notifiers!.list.includes(s);
        seen.rss = m2.rss;
      },
      *invalidateRangeStart(_s, range) {
        if (seen.releases > 0) seen.startsAfterRelease.push(range.event);
        return 0;
      },
      *invalidateRangeEnd() {},
    });
    yield* mmuNotifierRegister(sub, mm);
    yield* mmput(mm);
    assert.equal(sub.hashed, false, 'unlinked by exit');
    assert.equal(mm.exited, true);
    assert.equal(mm.count, 1, 'the notifier still holds mm_count');
    yield* mmuNotifierPut(sub);
    yield* mmuNotifierSynchronize(mm);
    assert.equal(mm.count, 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.deepEqual(seen, { hashed: true, rss: 3, releases: 1, startsAfterRelease: [] });
  // In the trace: mmu-release, then the UNMAP of the whole address space, then the frees.
  const ev = r.rec.events;
  const rel = ev.findIndex((e) => e.type === 'mmu-release');
  const unmap = ev.findIndex((e) => e.type === 'mmu-start' && e.event === 'UNMAP');
  const firstFree = ev.findIndex((e) => e.type === 'page-free');
  assert.ok(rel >= 0 && rel < unmap && unmap < firstFree, 'release, UNMAP, then frees');
  assert.equal(eventsOf(r.rec, 'mm-free').length, 1);
});

test('exit: after the last mmput every frame and swap slot is back, COW sharing included', () => {
  const r = runMm(function* (m) {
    const parent = m.createMm();
    const a = yield* mmap(parent, { len: 6 * PAGE_SIZE, prot: RW, flags: ANON });
    const f = m.createFile('f', { size: 2 * PAGE_SIZE });
    const fa = yield* mmap(parent, { len: 2 * PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: f });
    for (let i = 0; i < 6; i++) yield* cpuWriteU32(parent, a + i * PAGE_SIZE, i);
    yield* cpuWriteU32(parent, fa, 1);
    // Half the anonymous pages go to swap.
    yield* shrinkMemory(m, 3);
    assert.ok(m.swap.used > 0);
    const child = yield* fork(parent);
    yield* cpuWriteU32(child, a + 5 * PAGE_SIZE, 50);
    assert.equal(yield* cpuReadU32(child, a), 0);
    // An extra user reference defers the teardown.
    mmget(parent);
    yield* mmput(parent);
    assert.equal(parent.exited, false);
    yield* mmput(parent);
    assert.equal(parent.exited, true);
    assert.equal(mmgetNotZero(parent), false, 'an exited mm cannot be revived');
    yield* mmput(child);
    assert.equal(m.swap.used, 0, 'every swap slot freed');
    assert.equal(m.phys.usedFrames, f.cache.size, 'only the page cache keeps frames');
    assert.equal(f.mappings.size, 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
  assert.equal(eventsOf(r.rec, 'mm-free').length, 2);
});

test('exit: mmput of an mm with no users left is a kernel bug', () => {
  const r = runMm(function* (m) {
    const mm = m.createMm();
    yield* mmput(mm);
    yield* mmput(mm);
  });
  assert.equal(r.ok, false);
  assert.ok(isKernelBug(r.bug, 'use-after-free'), r.bug?.message);
});
