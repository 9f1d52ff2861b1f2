// `odpsim explore --jobs N` speed-up: the same exploration on 1 job (the baseline, same run) and
// on 2..all cores, as the user runs it (the built binary); checks every job count explores the
// same runs and steps and finds the same violation.
// Run: npm run build && npm run bench:jobs [-- --runs 2000]
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const argRuns = process.argv.indexOf('--runs');
const runs = argRuns >= 0 ? Number(process.argv[argRuns + 1]) : 2000;

interface Row {
  readonly world: string;
  readonly jobs: number;
  readonly wallMs: number;
  readonly runs: number;
  readonly steps: number;
  readonly token: string | null;
}

function explore(world: string[], jobs: number): Row {
  const args = ['explore', ...world, '--runs', String(runs), '--jobs', String(jobs), '--json'];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const wallMs = performance.now() - t0;
  if (r.status !== 0 && r.status !== 1) throw new Error(`odpsim ${args.join(' ')}: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as {
    result: { runs: number; steps: number };
    failure: { token: string } | null;
  };
  return {
    world: world.join(' '),
    jobs,
    wallMs,
    runs: j.result.runs,
    steps: j.result.steps,
    token: j.failure?.token ?? null,
  };
}

const cores = availableParallelism();
const worlds = [
  ['default', '--strategy', 'random'],
  ['rdma-odp', '--set', 'design=2020', '--strategy', 'pct'],
];
console.log(`odpsim explore --jobs: ${runs} runs per exploration, ${cores} cores\n`);
console.log('world                                   jobs   wall ms   runs/s   speed-up vs 1 job');
for (const w of worlds) {
  const base = explore(w, 1);
  const rows = [base];
  for (let j = 2; j <= cores; j++) rows.push(explore(w, j));
  for (const r of rows) {
    if (r.runs !== base.runs || r.steps !== base.steps || r.token !== base.token)
      throw new Error(`${r.world} --jobs ${r.jobs} explored differently from one job`);
    const rate = (r.runs * 1000) / r.wallMs;
    console.log(
      `${r.world.padEnd(40)}${String(r.jobs).padStart(4)}${r.wallMs.toFixed(0).padStart(10)}${rate.toFixed(1).padStart(9)}${(base.wallMs / r.wallMs).toFixed(2).padStart(10)}x`,
    );
  }
}
