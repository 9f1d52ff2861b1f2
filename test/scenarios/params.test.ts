// Every scenario parameter's help is true and enforced (issue 16): each constraint a help
// states is refused with an EINVAL naming the parameter, and each effect it claims shows in a
// run (timed strategy, seed 1).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { observations } from '../../src/check/observations.ts';
import { StatsCollector } from '../../src/cli/stats.ts';
import { explore, isErrno, Kernel, TimedStrategy } from '../../src/index.ts';
import { Machine } from '../../src/mm/machine.ts';
import { SwapSpace } from '../../src/mm/swap.ts';
import { defaultFrames } from '../../src/scenarios/default.ts';
import { findScenario, resolveParams, SCENARIOS } from '../../src/scenarios/index.ts';

// Reclaim leaves no trace event of its own: count it where it happens. An allocation that finds
// no free frame runs direct reclaim (a fault reclaims); a swap-out is any reclaim of a page.
let directReclaims = 0;
let swapOuts = 0;
const allocPage = Machine.prototype.allocPage;
const store = SwapSpace.prototype.store;
Machine.prototype.allocPage = function* (this: Machine, ...a: Parameters<typeof allocPage>) {
  if (this.phys.freeFrames === 0) directReclaims++;
  return yield* allocPage.apply(this, a);
};
SwapSpace.prototype.store = function (this: SwapSpace, ...a: Parameters<typeof store>) {
  swapOuts++;
  return store.apply(this, a);
};
after(() => {
  Machine.prototype.allocPage = allocPage;
  SwapSpace.prototype.store = store;
});

/** One timed run of `name` with `set`: its statistics, reclaim counts, verdict and observations. */
type Measured = ReturnType<typeof measure>;

function measure(name: string, set: Record<string, number> = {}) {
  const s = findScenario(name);
  const k = new Kernel({ strategy: new TimedStrategy(), maxSteps: 10_000_000 });
  const stats = new StatsCollector(k);
  directReclaims = 0;
  swapOuts = 0;
  s.build(k, resolveParams(s, set));
  const r = k.run();
  return {
    bug: r.bug?.message ?? null,
    directReclaims,
    swapOuts,
    stats: stats.snapshot(),
    observed: observations(k),
  };
}

/** `set` is refused with an EINVAL whose message matches `why`. */
function refused(name: string, set: Record<string, number>, why: RegExp): void {
  assert.throws(
    () => resolveParams(findScenario(name), set),
    (e: unknown) => isErrno(e, 'EINVAL') && why.test(String(e)),
    `${name} ${JSON.stringify(set)}`,
  );
}

test('every parameter: its default resolves, the values just outside its range are EINVAL naming it', () => {
  for (const s of SCENARIOS) {
    resolveParams(s);
    for (const p of s.params) {
      assert.ok(p.min <= p.default && p.default <= p.max, `${s.name} ${p.name}`);
      for (const v of [p.min - 1, p.max + 1])
        refused(s.name, { [p.name]: v }, new RegExp(`parameter ${p.name} of scenario ${s.name}`));
    }
  }
});

test('a help listing its values ("1: …", "0 …; 1 …; 2 …") has exactly those in its range', () => {
  let checked = 0;
  for (const s of SCENARIOS) {
    for (const p of s.params) {
      if (!/^(?:\d+:|[^:]*: 0 )/.test(p.description)) continue;
      checked++;
      // "1: …" alone is a flag (0 is its absence); otherwise every value is listed.
      const listed = [...p.description.matchAll(/(?:^|; |: |, )(\d+)[: ]/g)].map((m) =>
        Number(m[1]),
      );
      const values = listed.length === 1 && listed[0] === 1 ? [0, 1] : listed;
      const range = Array.from({ length: p.max - p.min + 1 }, (_, i) => p.min + i);
      assert.deepEqual(
        [...new Set(values)].sort((a, b) => a - b),
        range,
        `${s.name} ${p.name}: ${p.description}`,
      );
    }
  }
  assert.ok(checked >= 13, `${checked} parameters list their values`);
});

test('"a multiple of N" and "needs x=v" in a help are enforced, naming the parameter, value and rule', () => {
  let seen = 0;
  for (const s of SCENARIOS) {
    for (const p of s.params) {
      const multiple = /a multiple of (\d+)/.exec(p.description);
      if (multiple !== null) {
        const n = Number(multiple[1]);
        const bad = p.default + 1;
        refused(
          s.name,
          { [p.name]: bad },
          new RegExp(
            `parameter ${p.name} of scenario ${s.name} must be a multiple of ${n}, got ${bad}`,
          ),
        );
        assert.equal(resolveParams(s, { [p.name]: p.default + n })[p.name], p.default + n);
        seen++;
      }
      const needs = /needs (\w+)=(\d+)/.exec(p.description);
      if (needs !== null) {
        const [, other, want] = needs;
        const o = s.params.find((x) => x.name === other)!;
        // The flag set, the other parameter at any value but the one it needs.
        for (let v = o.min; v <= o.max; v++) {
          if (v === Number(want)) continue;
          const set = { [p.name]: 1, [other!]: v };
          if (resolveParamsOk(s.name, { [other!]: v }))
            refused(
              s.name,
              set,
              new RegExp(
                `parameter ${p.name} of scenario ${s.name}: ${p.name}=1 needs ${other}=${want}\\b.*, got ${other}=${v}$`,
              ),
            );
        }
        assert.equal(resolveParams(s, { [p.name]: 1, [other!]: Number(want) })[p.name], 1);
        seen++;
      }
    }
  }
  assert.equal(seen, 3, 'default pages, rdma-odp sw, mmap-io-unplug revoke');
});

function resolveParamsOk(name: string, set: Record<string, number>): boolean {
  try {
    resolveParams(findScenario(name), set);
    return true;
  } catch {
    return false;
  }
}

test('values inside a range that name nothing are EINVAL: rdma-odp design, mmap-io-unplug era', () => {
  refused(
    'rdma-odp',
    { design: 2017 },
    /design of scenario rdma-odp must be 2014, 2018 or 2020, got 2017/,
  );
  refused(
    'mmap-io-unplug',
    { era: 550 },
    /era of scenario mmap-io-unplug must be one of 420, 501, 505, 506, 507, 612, 613, got 550/,
  );
  refused(
    'default',
    { pages: 65 },
    /parameter pages of scenario default must be a multiple of 8, got 65/,
  );
});

test('default pressure (thp=0): faults reclaim where the frames fall below pages (pressure < 50 at the defaults), not with 10% to spare, never at pages=64; kswapd reclaims at any value', () => {
  assert.ok(defaultFrames(512, 64, 49) < 512 && defaultFrames(512, 64, 50) === 512);
  // Within a few frames of pages, the costs' timing decides whether a fault finds none free.
  const below = measure('default', { pressure: 45, thp: 0 });
  const at = measure('default', { pressure: 60, thp: 0 });
  const high = measure('default', { pressure: 400, thp: 0 });
  for (const m of [below, at, high]) assert.equal(m.bug, null, m.bug ?? '');
  assert.ok(below.directReclaims > 0, 'pressure=45 reclaims in faults');
  assert.equal(at.directReclaims, 0);
  // Well below pages, faults reclaim far more than kswapd does alone.
  const squeezed = measure('default', { pressure: 30, thp: 0 });
  assert.ok(
    squeezed.swapOuts > 2 * at.swapOuts,
    `${squeezed.swapOuts} swap-outs vs ${at.swapOuts}`,
  );
  // Past the point where frames cover the run, more frames change nothing; kswapd still reclaims.
  assert.deepEqual(high.stats, at.stats);
  assert.ok(high.swapOuts > 0);
  // At pages=64 the machine has at least 64 frames: no value of pressure matters (chunk=64).
  for (let p = 10; p <= 400; p += 10) assert.ok(defaultFrames(64, 64, p) >= 64);
  const low = measure('default', { pages: 64, pressure: 10, thp: 0 });
  assert.deepEqual(measure('default', { pages: 64, pressure: 400, thp: 0 }).stats, low.stats);
  assert.equal(low.directReclaims, 0);
});

test('default chunk and rounds: chunk adds 4×chunk frames (so pressure bites only when 4×chunk < pages); rounds repeats the passes', () => {
  assert.equal(defaultFrames(512, 16, 10) - defaultFrames(512, 8, 10), 32);
  const [one, two, three] = [1, 2, 3].map((rounds) =>
    measure('default', { pages: 64, rounds }),
  ) as [Measured, Measured, Measured];
  // Each round adds accesses; the later ones find the munmapped eighth gone (and, as virtual
  // time goes, more chunks reaching into it), so fewer than the first.
  assert.ok(one.stats.devAccesses < two.stats.devAccesses);
  assert.ok(two.stats.devAccesses < three.stats.devAccesses);
});

test('kvm-mirror and dmirror-race frames: fewer than pages and faults reclaim; the mutating thread reclaims at any value', () => {
  const kvm = (frames: number, rounds = 1) => measure('kvm-mirror', { pages: 8, frames, rounds });
  assert.ok(kvm(7).directReclaims > 0);
  assert.equal(kvm(8).directReclaims, 0);
  assert.ok(kvm(64).swapOuts > 0, 'the mutator reclaims with plenty of frames');
  assert.equal(kvm(64, 0).swapOuts, 0, 'rounds=0: no reclaim at all');
  const race = (pages: number, frames: number) => measure('dmirror-race', { pages, frames });
  const tight = race(8, 7);
  assert.ok(tight.directReclaims > 0);
  assert.ok(tight.stats.devRetries < 10);
  assert.equal(race(8, 8).directReclaims, 0);
  assert.ok(race(8, 8).swapOuts > 0);
});

test('dmirror-race frames below pages − 1: a device command thrashes until the 1 s HMM timeout (EBUSY after thousands of retries, each pass swapping)', () => {
  const m = measure('dmirror-race', { pages: 4, frames: 2 });
  assert.equal(m.bug, null, m.bug ?? '');
  assert.ok(m.stats.devRetries >= 1_000, `${m.stats.devRetries} retries`);
  assert.ok(m.stats.virtualTimeNs >= 1_000_000_000);
});

test('rdma-odp pressure: faults reclaim below 78 at the defaults and below 94 at pages=64, not above; at the defaults kswapd reclaims at any value', () => {
  for (const [set, threshold] of [
    [{}, 78],
    [{ pages: 64 }, 94],
  ] as const) {
    const below = measure('rdma-odp', { ...set, pressure: threshold - 1 });
    const at = measure('rdma-odp', { ...set, pressure: threshold });
    const high = measure('rdma-odp', { ...set, pressure: 400 });
    for (const m of [below, at, high]) assert.equal(m.bug, null, m.bug ?? '');
    assert.ok(below.directReclaims > 0, `${JSON.stringify(set)} pressure=${threshold - 1}`);
    assert.equal(at.directReclaims, 0, `${JSON.stringify(set)} pressure=${threshold}`);
    assert.equal(high.directReclaims, 0);
  }
  assert.ok(measure('rdma-odp', { pressure: 400 }).swapOuts > 0, 'kswapd');
  assert.equal(measure('rdma-odp', { pressure: 400, rounds: 0 }).swapOuts, 0);
});

test('rdma-pinned-vs-odp: the MRs larger than the limit have memlock + 1 pages, those larger than RAM frames + 16', () => {
  const m = measure('rdma-pinned-vs-odp', { memlock: 4, frames: 32 });
  assert.equal(m.bug, null, m.bug ?? '');
  assert.ok(m.observed.includes('pinned MR of 5 pages (more than RLIMIT_MEMLOCK): ENOMEM'));
  assert.ok(m.observed.includes('ODP MR of 5 pages (more than RLIMIT_MEMLOCK): registered'));
  assert.ok(m.observed.includes('pinned MR of 48 pages (more than RAM): ENOMEM'));
  assert.ok(m.observed.includes('ODP MR of 48 pages (more than RAM): registered'));
});

test('itree-nonblock-leak reaps: attempts only while the process lives, 100 ms apart', () => {
  const reaps = (set: Record<string, number>) =>
    measure('itree-nonblock-leak', { fix: 1, ...set }).stats.invalidationsByEvent.UNMAP ?? 0;
  // The process exits 2 µs after the kill: the second attempt finds it gone.
  assert.equal(reaps({ reaps: 10 }), reaps({ reaps: 1 }));
  // Lingering 300 ms, it meets more attempts.
  const long = { linger: 300_000_000 };
  assert.ok(reaps({ ...long, reaps: 10 }) > reaps({ ...long, reaps: 1 }));
  // With the leak (fix=0) it does not exit: the second attempt runs.
  const leak = (n: number) =>
    measure('itree-nonblock-leak', { reaps: n }).stats.invalidationsByEvent.UNMAP ?? 0;
  assert.ok(leak(2) > leak(1));
});

test('mmap-io-unplug mremap=2 exposes the race of docs/findings/mremap-untracked-io-vma.md (pct, seed 1, ≤ 100 runs); mremap=1 does not', () => {
  const s = findScenario('mmap-io-unplug');
  const run = (mremap: number) => {
    const params = resolveParams(s, { mremap });
    return explore((k) => s.build(k, params), { strategy: 'pct', seed: 1, runs: 100 });
  };
  const racing = run(2);
  assert.ok(
    racing.failure?.rule === 'io-semantics' || racing.failure?.rule === 'io-mappings',
    racing.failure?.bug.message ?? 'clean',
  );
  assert.equal(run(1).failure, null);
});
