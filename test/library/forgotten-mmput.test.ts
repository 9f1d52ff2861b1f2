// A world that never drops its mm reference must not pass the leak check: once every task
// finished nothing can mmput() any more, so the leak oracle reports the mm by name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cpuWriteU32,
  explore,
  installOracles,
  Kernel,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  Machine,
  mmap,
  mmget,
  mmput,
  munmap,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  registeredOracles,
  type WorldBuilder,
} from '../../src/index.ts';
import { createProcess } from '../../src/mm/process.ts';

/** One task maps, touches and unmaps a page; `puts` is how many mmput() calls it makes. */
function world(options: { puts: number; extraGet?: boolean; leaks?: boolean }): WorldBuilder {
  return (k) => {
    const machine = new Machine(k, { frames: 16 });
    installOracles(k, machine, options.leaks === false ? { leaks: false } : {});
    const mm = machine.createMm();
    k.spawn('main', function* () {
      const addr = yield* mmap(mm, {
        len: PAGE_SIZE,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      yield* cpuWriteU32(mm, addr, 7);
      yield* munmap(mm, addr, PAGE_SIZE);
      if (options.extraGet) mmget(mm);
      for (let i = 0; i < options.puts; i++) yield* mmput(mm);
    });
  };
}

function runOnce(build: WorldBuilder) {
  const k = new Kernel();
  build(k);
  return { result: k.run(), oracles: registeredOracles(k) };
}

test('a world that forgets mmput() fails the leak check, naming the mm and mmput()', () => {
  const { result, oracles } = runOnce(world({ puts: 0 }));
  assert.equal(result.ok, false);
  assert.equal(result.bug?.rule, 'leak');
  assert.match(
    result.bug!.message,
    /mmput\(\) never dropped the user references of mm1 \(mm_users 1\)/,
  );
  // The report's leak oracle is the one that claims the failure, and it counted its check.
  const leaks = oracles.find((o) => o.name === 'leaks');
  assert.ok(leaks?.rules.includes('leak'));
  assert.equal(leaks!.checks(), 1);
});

test('an mmget() without its mmput() is a leak too, even after the owner dropped its own', () => {
  const { result } = runOnce(world({ puts: 1, extraGet: true }));
  assert.equal(result.bug?.rule, 'leak');
  assert.match(result.bug!.message, /mm1 \(mm_users 1\)/);
});

test('the same world with its mmput() is clean; so is one that opted out of the leak check', () => {
  const clean = runOnce(world({ puts: 1 }));
  assert.equal(clean.result.ok, true, clean.result.bug?.message);
  const optedOut = runOnce(world({ puts: 0, leaks: false }));
  assert.equal(optedOut.result.ok, true, optedOut.result.bug?.message);
});

test('a process still alive at the end holds its mm: not a leak, but one more mmget() is', () => {
  function processWorld(extraGet: boolean): WorldBuilder {
    return (k) => {
      const machine = new Machine(k, { frames: 16 });
      installOracles(k, machine);
      const proc = createProcess(machine);
      k.spawn('main', function* () {
        const addr = yield* mmap(proc.mm!, {
          len: PAGE_SIZE,
          prot: PROT_READ | PROT_WRITE,
          flags: MAP_PRIVATE | MAP_ANONYMOUS,
        });
        yield* cpuWriteU32(proc.mm!, addr, 7);
        if (extraGet) mmget(proc.mm!);
      });
    };
  }
  const alive = runOnce(processWorld(false));
  assert.equal(alive.result.ok, true, alive.result.bug?.message);
  const leaked = runOnce(processWorld(true));
  assert.equal(leaked.result.bug?.rule, 'leak');
  assert.match(leaked.result.bug!.message, /mm1 \(mm_users 2, 1 held by its process\)/);
});

test('explore reports the forgotten mmput() as a leak on its first run (random, seed 1, 10 runs)', () => {
  const r = explore(world({ puts: 0 }), { strategy: 'random', seed: 1, runs: 10 });
  assert.equal(r.failure?.rule, 'leak');
  assert.equal(r.failure.run, 0);
});
