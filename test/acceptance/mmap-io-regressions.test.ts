// The regression cases of device-memory mappings (spec mmap-io.md §4, M1–M3), each shown
// failing the way it did and passing with the fix, and the kernel races this model found
// (docs/findings): the 6.13 disassociation_lock inversion and an mremap racing hot unplug.
// Explorations state strategy, seed and budget.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import { worldBuilder, worldSpec } from '../../src/cli/world.ts';
import type { IbUcontext } from '../../src/drivers/rdma/core/objects.ts';
import { ibUnregisterDevice } from '../../src/drivers/rdma/core/rdma-core.ts';
import {
  ibUverbsClose,
  ibUverbsGetContext,
  ibUverbsOpen,
  type UverbsFile,
} from '../../src/drivers/rdma/core/uverbs.ts';
import { ibAllocDm, ibFreeDm, ibMmap } from '../../src/drivers/rdma/core/verbs.ts';
import { Mlx5Device } from '../../src/drivers/rdma/hw/mlx5/main.ts';
import { type Co, type ExploreOptions, explore, isErrno, type Kernel } from '../../src/index.ts';
import { join } from '../../src/kernel/context.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  VM_SHARED,
} from '../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { Machine } from '../../src/mm/machine.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mremap } from '../../src/mm/mremap.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { createProcess, exitMm, forkProcess, type Process } from '../../src/mm/process.ts';
import { type TouchWorld, touchMapping } from '../../src/scenarios/mmap-io-touch.ts';
import { mapClock, mapDoorbell, P, RW, readOrSigbus, runIo } from '../drivers/rdma/io-kit.ts';

/** What a world's process set up before the racing tasks start. */
interface Setup {
  readonly k: Kernel;
  readonly dev: Mlx5Device;
  readonly proc: Process;
  readonly file: UverbsFile;
  readonly ctx: IbUcontext;
  readonly touch: TouchWorld;
}

/**
 * A world: a process opens the device (of `era`) and runs `prepare`; then the tasks `racers`
 * returns run concurrently; when they are done the process closes the file and exits.
 */
function raceWorld<T>(
  era: number,
  prepare: (s: Setup) => Co<T>,
  racers: (s: Setup, t: T) => Record<string, () => Co>,
): (k: Kernel) => void {
  return (k) => {
    const machine = new Machine(k, { frames: 32 });
    installOracles(k, machine);
    const dev = new Mlx5Device(machine, { name: 'mlx5_0', era });
    const proc = createProcess(machine);
    k.spawn('main', function* () {
      const file = yield* ibUverbsOpen(dev);
      const ctx = yield* ibUverbsGetContext(file, proc);
      const s: Setup = { k, dev, proc, file, ctx, touch: { k, revoked: false, checks: 0 } };
      const t = yield* prepare(s);
      const tasks = Object.entries(racers(s, t)).map(([name, body]) => k.spawn(name, body));
      for (const task of tasks) yield* join(task);
      yield* ibUverbsClose(file);
      yield* exitMm(proc);
    });
  };
}

/** Counts an outcome of a run. */
const count = (m: Map<string, number>, what: string) => m.set(what, (m.get(what) ?? 0) + 1);

const dfs2: ExploreOptions = { strategy: 'dfs', preemptions: 2, runs: 5000, minimise: false };

test('M1: after hot unplug a read-only mapping reads zeros and a writable one the dummy page; in 4.20 (and the mutant) both got SIGBUS', () => {
  const touch = (era: number, mutants: string[] = []) => {
    const seen: unknown[] = [];
    const r = runIo(
      function* (w) {
        const a = yield* mapDoorbell(w);
        const c = yield* mapClock(w);
        yield* ibUnregisterDevice(w.dev);
        seen.push(yield* readOrSigbus(w.proc, c), yield* readOrSigbus(w.proc, a));
        seen.push((w.proc.mm!.findVma(a)!.flags & VM_SHARED) !== 0);
        yield* exitMm(w.proc);
        yield* ibUverbsClose(w.file);
      },
      { era, mutants },
    );
    assert.ok(r.ok, r.bug?.message);
    return seen;
  };
  assert.deepEqual(touch(612), [0, 0, true]);
  assert.deepEqual(touch(501), [0, 0, true]);
  // 4.20 also cleared VM_SHARED, as the drivers before it had turned the VMA anonymous.
  assert.deepEqual(touch(420), ['SIGBUS', 'SIGBUS', false]);
  assert.deepEqual(touch(612, ['mmapio.disassociate-no-fault']), ['SIGBUS', 'SIGBUS', true]);
});

/**
 * M2: one thread maps device memory (already mapped once) while another frees it
 * (ibv_free_dm: the entry's removal).
 */
const m2 = (era: number, outcomes: Map<string, number>) =>
  raceWorld(
    era,
    function* (s) {
      // A first mapping holds a reference: the removal does not free the entry.
      const dm = yield* ibAllocDm(s.ctx, 1);
      yield* ibMmap(s.proc, s.file, dm.offset, P, RW);
      return dm;
    },
    (s, dm) => ({
      *mapper() {
        try {
          const at = yield* ibMmap(s.proc, s.file, dm.offset, P, RW);
          count(outcomes, 'mapped');
          yield* munmap(s.proc.mm!, at, P);
        } catch (e) {
          if (!isErrno(e) || e.code !== 'EINVAL') throw e;
          count(outcomes, 'refused');
        }
      },
      *freer() {
        yield* ibFreeDm(dm);
      },
    }),
  );

test('M2: with removal fenced by the xarray lock no lookup finds a removed entry; unfenced (5.5, or the mutant) one does (dfs bound 2, exhaustive)', () => {
  const outcomes = new Map<string, number>();
  const fixed = explore(m2(612, outcomes), dfs2);
  assert.equal(fixed.failure, null, fixed.failure?.bug.message);
  assert.equal(fixed.dfs?.exhausted, true);
  // Both orders happen: the mapping made before the removal, and refused after it.
  assert.ok((outcomes.get('mapped') ?? 0) > 0 && (outcomes.get('refused') ?? 0) > 0);
  for (const [era, mutants] of [
    [505, []],
    [612, ['mmapio.remove-without-lock']],
  ] as const) {
    const r = explore(m2(era, new Map()), { ...dfs2, mutants });
    assert.equal(r.failure?.bug.rule, 'lifetime', `era ${era} ${mutants.join()}`);
    assert.match(r.failure!.bug.message, /a lookup found it after it was revoked/);
  }
});

/** M3: the process forks while the device is unplugged; the child touches its copy. */
const m3 = (outcomes: Map<string, number>) =>
  raceWorld(
    612,
    (s) => mapDoorbell(s),
    (s, at) => ({
      *forker() {
        const child = yield* forkProcess(s.proc);
        count(outcomes, child.mm!.findVma(at)!.privateData === null ? 'zapped' : 'tracked');
        s.touch.revoked = s.dev.unregistered;
        yield* touchMapping(s.touch, child.mm!, { name: 'copy', addr: at, pages: 1 }, 1);
        yield* exitMm(child);
      },
      *unplug() {
        yield* ibUnregisterDevice(s.dev);
      },
    }),
  );

test('M3: open tries hw_destroy_rwsem, so a fork racing an unplug either tracks its copy or zaps it, never deadlocks; a blocking down_read deadlocks (dfs bound 2)', () => {
  const outcomes = new Map<string, number>();
  const fixed = explore(m3(outcomes), dfs2);
  assert.equal(fixed.failure, null, fixed.failure?.bug.message);
  assert.equal(fixed.dfs?.exhausted, true);
  assert.ok((outcomes.get('tracked') ?? 0) > 0 && (outcomes.get('zapped') ?? 0) > 0);
  const r = explore(m3(new Map()), { ...dfs2, mutants: ['mmapio.open-blocking-read'] });
  assert.ok(r.failure !== null);
  assert.ok(['lock-order', 'deadlock'].includes(r.failure.bug.rule), r.failure.bug.message);
  assert.match(r.failure.bug.message, /hw_destroy_rwsem/);
});

test('a fork copy nobody tracks (mutant) keeps the BAR mapped through the unplug: I1 fails at the revocation', () => {
  const run = (mutants: string[]) =>
    runIo(
      function* (w) {
        yield* mapDoorbell(w);
        const child = yield* forkProcess(w.proc);
        yield* ibUnregisterDevice(w.dev);
        yield* exitMm(child);
        yield* exitMm(w.proc);
        yield* ibUverbsClose(w.file);
      },
      { mutants },
    );
  const fixed = run([]);
  assert.ok(fixed.ok, fixed.bug?.message);
  const broken = run(['mmapio.no-open-on-fork']);
  assert.equal(broken.bug?.rule, 'revocation');
  assert.match(broken.bug!.message, /while mm\d+ 0x[0-9a-f]+ still maps it/);
});

test('finding: from 6.13 an mmap and a disassociation take mmap_lock and disassociation_lock in opposite orders', () => {
  const r = runIo(
    function* (w) {
      yield* mapDoorbell(w);
      yield* ibUnregisterDevice(w.dev);
      yield* exitMm(w.proc);
      yield* ibUverbsClose(w.file);
    },
    { era: 613 },
  );
  assert.equal(r.bug?.rule, 'lock-order');
  assert.match(r.bug!.message, /mmap_lock .* while holding .*disassociation_lock/);
});

/** An mremap of the doorbell racing the unplug; afterwards the moved mapping is touched. */
const moveRace = raceWorld(
  612,
  function* (s) {
    const at = yield* mapDoorbell(s);
    yield* cpuWriteU32(s.proc.mm!, at, 1);
    const to = yield* mmap(s.proc.mm!, {
      len: P,
      prot: PROT_NONE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    return { at, to };
  },
  (s, { at, to }) => ({
    *mover() {
      yield* mremap(s.proc.mm!, at, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, to);
      yield* join(s.k.tasks.find((t) => t.name === 'unplug')!);
      s.touch.revoked = true;
      yield* touchMapping(s.touch, s.proc.mm!, { name: 'moved doorbell', addr: to, pages: 1 }, 2);
    },
    *unplug() {
      yield* ibUnregisterDevice(s.dev);
    },
  }),
);

test('finding: an mremap racing hot unplug leaves the moved VMA untracked with the device entries (dfs bound 2)', () => {
  const r = explore(moveRace, dfs2);
  assert.ok(r.failure !== null, 'the race is found');
  assert.ok(['revocation', 'io-semantics'].includes(r.failure.bug.rule), r.failure.bug.message);
});

test('finding: before 5.7 a process exiting during the unplug leaves its entries in mmap_xa at dealloc_ucontext (WARN)', () => {
  const world = (era: number) => worldBuilder(worldSpec('mmap-io-unplug', { era }));
  const options: ExploreOptions = { strategy: 'pct', seed: 1, runs: 300 };
  const old = explore(world(506), options);
  assert.equal(old.failure?.bug.rule, 'warn');
  assert.match(old.failure!.bug.message, /mmap offsets still in mmap_xa at dealloc_ucontext/);
  const fixed = explore(world(507), options);
  assert.equal(fixed.failure, null, fixed.failure?.bug.message);
});
