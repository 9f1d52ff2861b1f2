// CLI benchmark: `odpsim explore` throughput on the default scenario, and `odpsim run` wall
// time and peak memory at pages=100000, each as the user runs them (the built binary, one
// process each). Baselines in the same run: exploration of a bare 3-task world (scheduler
// only, no mm, no oracles) and `odpsim run` at the default 512 pages.
// Run: npm run build && npm run bench:cli [-- --pages 100000]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const argPages = process.argv.indexOf('--pages');
const bigPages = argPages >= 0 ? Number(process.argv[argPages + 1]) : 100_000;

interface Measured {
  readonly wallMs: number;
  readonly maxRssMiB: number;
  readonly json: Record<string, unknown>;
}

/** Runs the CLI with --json in a child; wall time from here, peak RSS from the child's rusage. */
function cliRun(args: string[]): Measured {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args, '--json'], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`odpsim ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const json = JSON.parse(r.stdout) as Record<string, unknown>;
  return { wallMs, maxRssMiB: peakRss(args), json };
}

/** Peak RSS of one more run of the same command, read with /usr/bin/time when present. */
function peakRss(args: string[]): number {
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, cli, ...args, '--json'], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0) return Number.NaN;
  const kb = Number(r.stderr.trim().split('\n').pop());
  return kb / 1024;
}

/** Steps per second of a bare exploration: three tasks yielding, no mm, no oracles. */
async function bareStepsPerSec(): Promise<number> {
  const api = await import('../../src/index.ts');
  const world = (k: InstanceType<typeof api.Kernel>) => {
    for (let t = 0; t < 3; t++) {
      k.spawn(`t${t}`, function* () {
        for (let i = 0; i < 66; i++) yield;
      });
    }
  };
  const t0 = performance.now();
  const r = api.explore(world, { strategy: 'pct', seed: 1, runs: 20_000 });
  return r.steps / ((performance.now() - t0) / 1000);
}

const explore = cliRun([
  'explore',
  'default',
  '--strategy',
  'pct',
  '--runs',
  '20',
  '--seed',
  '1',
  '--max-steps',
  '10000000',
]);
const result = explore.json.result as { runs: number; steps: number };
const exploreSec = (explore.json.elapsedMs as number) / 1000;
const bare = await bareStepsPerSec();
const small = cliRun(['run']);
const big = cliRun(['run', '--set', `pages=${bigPages}`]);
const bigSteps = (big.json.stats as { steps: number }).steps;
const smallSteps = (small.json.stats as { steps: number }).steps;

const f = (n: number, d = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(`# odpsim CLI benchmark (node ${process.version})\n`);
console.log('| measure | value | baseline | ratio |');
console.log('|---|---|---|---|');
console.log(
  `| explore default (pct, ${result.runs} runs, pages=512): runs/s | ${f(result.runs / exploreSec, 2)} | | |`,
);
console.log(
  `| explore default: steps/s | ${f(result.steps / exploreSec)} | bare 3-task world: ${f(bare)} | ${f(bare / (result.steps / exploreSec), 1)}x slower per step |`,
);
console.log(
  `| run default pages=${bigPages}: wall time | ${f(big.wallMs / 1000, 1)} s (${f(bigSteps)} steps) | pages=512: ${f(small.wallMs / 1000, 2)} s (${f(smallSteps)} steps) | ${f(big.wallMs / small.wallMs, 1)}x for ${f(bigPages / 512, 0)}x the pages |`,
);
console.log(
  `| run default pages=${bigPages}: peak RSS | ${f(big.maxRssMiB)} MiB | pages=512: ${f(small.maxRssMiB)} MiB | ${f(big.maxRssMiB / small.maxRssMiB, 1)}x |`,
);
