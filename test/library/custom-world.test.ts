// The library example (examples/custom-world.ts): its world is clean, its bug switch makes a
// race the explorer finds, minimises and replays, and its module exports what
// `odpsim replay --world` loads. Each exploration states its strategy, seed and budget.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import exported, {
  customWorld,
  main,
  PAGES,
  type WorldStats,
  world,
} from '../../examples/custom-world.ts';
import { explore, replay } from '../../src/index.ts';

test('clean: dfs exhausts preemption bound 2, and pct (seed 1, depth 3) finds nothing in 2,000 runs', () => {
  const stats: WorldStats[] = [];
  const build = customWorld({ onEnd: (s) => stats.push(s) });
  const dfs = explore(build, { strategy: 'dfs', preemptions: 2, runs: 100_000 });
  assert.equal(dfs.failure, null, dfs.failure?.bug.message);
  assert.equal(dfs.stoppedBy, 'exhausted');
  assert.ok(dfs.runs > 100, `${dfs.runs} schedules`);
  const pct = explore(build, { strategy: 'pct', seed: 1, depth: 3, runs: 2000 });
  assert.equal(pct.failure, null, pct.failure?.bug.message);
  assert.equal(pct.runs, 2000);
  // Every run ended clean and reported; every one saw the munmap's invalidation.
  assert.ok(stats.length >= dfs.runs + pct.runs, 'one report per clean run');
  assert.ok(stats.every((s) => s.invalidations >= 1));
  // The schedules reach both paths of the device fault: a commit, and a retry after a race.
  assert.ok(stats.some((s) => s.deviceMaps === PAGES));
  assert.ok(stats.some((s) => s.retries > 0));
});

test('bug: the device that skips the sequence check commits a stale snapshot (random, seed 1, 1,000 runs); minimised; the token replays it', () => {
  const build = customWorld({ bug: true });
  const r = explore(build, { strategy: 'random', seed: 1, runs: 1000 });
  assert.equal(r.stoppedBy, 'failure');
  const f = r.failure!;
  assert.equal(f.rule, 'coherence');
  assert.equal(f.task, 'device');
  assert.match(f.bug.message, /counter-dev commits a translation of mm1 .* \(stale snapshot\)/);
  // Random schedules preempt often: minimisation keeps only the preemptions the race needs.
  assert.ok(
    f.preemptions < f.original.preemptions,
    `minimised from ${f.original.preemptions} to ${f.preemptions} preemptions`,
  );
  const again = replay(build, f.token);
  assert.equal(again.result.bug?.rule, 'coherence');
  assert.equal(again.result.bug?.message, f.bug.message);
  assert.deepEqual(again.result.decisions, f.decisions);
  // The same schedule on the correct device is clean: the switch is the whole bug.
  const fixed = replay(customWorld(), f.token).result;
  assert.equal(fixed.ok, true, fixed.bug?.message);
});

test('bug: dfs at preemption bound 2 finds it too', () => {
  const r = explore(customWorld({ bug: true }), { strategy: 'dfs', preemptions: 2, runs: 1000 });
  assert.equal(r.failure?.rule, 'coherence');
});

test('main() explores the clean world and says so', () => {
  const saved = process.env.ODPSIM_EXAMPLE_BUG;
  delete process.env.ODPSIM_EXAMPLE_BUG;
  try {
    const lines: string[] = [];
    assert.equal(
      main((l) => lines.push(l)),
      0,
    );
    assert.match(lines[0]!, /^explored 1000 schedules \(random, seed 1\)/);
    assert.equal(lines.at(-1), 'clean');
  } finally {
    if (saved !== undefined) process.env.ODPSIM_EXAMPLE_BUG = saved;
  }
});

test('the module exports the world as default and as `world`; ODPSIM_EXAMPLE_BUG=1 makes it the buggy one', () => {
  assert.equal(exported, world);
  assert.equal(typeof world, 'function');
  // A fresh process loads the module as `odpsim replay --world` would, with the switch set.
  const script = `
    const m = await import('./examples/custom-world.ts');
    const { explore, replay } = await import('./src/index.ts');
    const f = explore(m.default, { strategy: 'random', seed: 1, runs: 1000 }).failure;
    console.log(f.rule, replay(m.world, f.token).result.bug.rule);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, ODPSIM_EXAMPLE_BUG: '1' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'coherence coherence');
});
