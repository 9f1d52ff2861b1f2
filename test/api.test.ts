// A world built only through the public API (src/index.ts), as a user of the package would.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addCostAssignment,
  COST_NAMES,
  COSTS,
  type CostOverrides,
  cpuReadU32,
  cpuWriteU32,
  Dmirror,
  DmirrorDevice,
  explore,
  HMM_DMIRROR_READ,
  installOracles,
  Kernel,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  Machine,
  mmap,
  mmput,
  munmap,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  renderChartSvg,
  STUDIES,
  studyRnr,
  TimedStrategy,
} from '../src/index.ts';

function world(k: Kernel): void {
  const machine = new Machine(k, { frames: 16 });
  installOracles(k, machine);
  const device = new DmirrorDevice(machine, 0);
  const mm = machine.createMm();
  k.spawn('process', function* () {
    const a = yield* mmap(mm, {
      len: 2 * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    yield* cpuWriteU32(mm, a, 41);
    const d = yield* Dmirror.open(device, mm);
    const buf = new Uint8Array(2 * PAGE_SIZE);
    const unmapper = k.spawn('unmapper', function* () {
      yield* munmap(mm, a + PAGE_SIZE, PAGE_SIZE);
    });
    const ret = yield* d.ioctl(HMM_DMIRROR_READ, {
      addr: a,
      ptr: buf,
      npages: 2,
      cpages: 0,
      faults: 0,
    });
    assert.ok(ret === 0 || ret === -14, `READ returned ${ret}`);
    if (ret === 0) assert.equal(new Int32Array(buf.buffer)[0], 41);
    assert.equal(yield* cpuReadU32(mm, a), 41);
    while (unmapper.state !== 2) yield;
    yield* d.close();
    yield* mmput(mm);
  });
}

test('a user-built world from the public API is clean under exploration (pct, seed 1, 500 runs)', () => {
  const r = explore(world, { strategy: 'pct', seed: 1, runs: 500 });
  assert.equal(r.failure, null, r.failure?.bug.message);
  assert.equal(r.runs, 500);
});

test('the cost model and the studies are public: a timed world spends an override; a study and its chart from the package', () => {
  // A process writing four fresh pages: four CPU faults in virtual-time order.
  const touch = (k: Kernel) => {
    const mm = new Machine(k, { frames: 16 }).createMm();
    k.spawn('process', function* () {
      const a = yield* mmap(mm, {
        len: 4 * PAGE_SIZE,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      for (let i = 0; i < 4; i++) yield* cpuWriteU32(mm, a + i * PAGE_SIZE, i);
      yield* mmput(mm);
    });
  };
  const timeOf = (costs: CostOverrides) => {
    const k = new Kernel({ strategy: new TimedStrategy(), costs });
    touch(k);
    const r = k.run();
    assert.equal(r.ok, true, r.bug?.message);
    return { now: k.now, faults: k.costs.tally.get('cpu.fault') };
  };
  const plain = timeOf({});
  const slow = timeOf(addCostAssignment({}, 'cpu.fault=1ms'));
  assert.equal(plain.faults?.count, 4);
  assert.equal(slow.faults!.ns, slow.faults!.count * 1_000_000);
  assert.ok(slow.now > plain.now + 1_000_000);
  assert.ok(COST_NAMES.includes('mlx5.pf.trigger') && COSTS['mlx5.pf.trigger'].source !== '');
  const r = studyRnr({ timers: [0], retries: [7] });
  assert.equal(r.study, 'rnr');
  assert.match(renderChartSvg(r.charts[0]!), /^<svg /);
  assert.deepEqual(
    STUDIES.map((s) => s.name),
    ['npf', 'first-touch', 'rnr', 'overcommit', 'designs'],
  );
});
