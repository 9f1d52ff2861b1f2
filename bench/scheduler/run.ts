// Scheduler benchmark: (1) cost of one scheduled step against a bare generator loop,
// (2) pct exploration throughput on a 3-task, 200-step world, (3) tracing overhead with no
// subscriber, against a copy of the sources with every trace check compiled to `false`.
// Run: npm run bench:scheduler. Prints a Markdown table; medians of 5.

import { execFileSync } from 'node:child_process';
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median, printTable } from '../common.ts';

type Api = typeof import('../../src/index.ts');

const STEPS = 2_000_000;
const RUNS = 20_000;
// Odd, and large enough that the median resolves a 5% difference on a shared 2-core box.
const REPEAT = 9;

/** CPU time of `fn` in ms (user + system): steadier than wall time when the box is shared. */
function time(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000;
}

function bareLoop(): number {
  return time(() => {
    function* g() {
      for (let i = 0; i < STEPS; i++) yield;
    }
    const it = g();
    while (!it.next().done) {}
  });
}

function kernelLoop(api: Api): number {
  return time(() => {
    const k = new api.Kernel({ maxSteps: STEPS + 10 });
    k.spawn('spinner', function* () {
      for (let i = 0; i < STEPS; i++) yield;
    });
    const r = k.run();
    if (!r.ok || r.steps !== STEPS + 1)
      throw new Error(`unexpected run: ${r.bug?.message} ${r.steps}`);
  });
}

/** Three tasks, 200 steps in all, taking a mutex now and then (so trace call sites run). */
function world(api: Api) {
  return (k: InstanceType<Api['Kernel']>): void => {
    const m = new api.Mutex('m');
    for (let t = 0; t < 3; t++) {
      k.spawn(`t${t}`, function* () {
        for (let i = 0; i < 16; i++) {
          yield* m.lock();
          yield;
          yield;
          m.unlock();
          yield;
        }
      });
    }
  };
}

function exploreRuns(api: Api): { ms: number; steps: number } {
  let steps = 0;
  const ms = time(() => {
    const r = api.explore(world(api), { strategy: 'pct', seed: 1, runs: RUNS, depth: 3 });
    if (r.failure !== null || r.runs !== RUNS) throw new Error('exploration failed');
    steps = r.steps;
  });
  return { ms, steps };
}

/** A copy of src/ whose trace checks are the constant false: the no-tracing baseline. */
function untracedCopy(): string {
  // Inside the project, so tsx compiles it with the same tsconfig as the original.
  const dir = mkdtempSync(fileURLToPath(new URL('../../.bench-tmp-', import.meta.url)));
  cpSync(new URL('../../src', import.meta.url), dir, { recursive: true });
  const walk = (d: string): void => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts'))
        writeFileSync(p, readFileSync(p, 'utf8').replace(/\b(this|k)\.trace\.on\b/g, 'false'));
    }
  };
  walk(dir);
  return dir;
}

// A child measures one variant in a fresh process, so the two copies never share JIT state.
const variantArg = process.argv.indexOf('--variant');
if (variantArg >= 0) {
  const dir = process.argv[variantArg + 1]!;
  const api = (await import(pathToFileURL(join(dir, 'index.ts')).href)) as Api;
  const r = exploreRuns(api);
  console.log(
    JSON.stringify({ ms: r.ms, steps: r.steps, step: kernelLoop(api), bare: bareLoop() }),
  );
  process.exit(0);
}

function child(dir: string): { ms: number; steps: number; step: number; bare: number } {
  const out = execFileSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--variant', dir],
    { encoding: 'utf8' },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as {
    ms: number;
    steps: number;
    step: number;
    bare: number;
  };
}

const srcDir = fileURLToPath(new URL('../../src', import.meta.url));
const copy = untracedCopy();
const bare: number[] = [];
const sched: number[] = [];
const traced: number[] = [];
const untraced: number[] = [];
let stepsPerRun = 0;
for (let i = 0; i < REPEAT; i++) {
  const a = child(srcDir);
  bare.push(a.bare);
  sched.push(a.step);
  traced.push(a.ms);
  stepsPerRun = a.steps / RUNS;
  untraced.push(child(copy).ms);
}
rmSync(copy, { recursive: true, force: true });
const nsBare = (median(bare) * 1e6) / STEPS;
const nsStep = (median(sched) * 1e6) / STEPS;
const runsPerSec = RUNS / (median(traced) / 1000);
const overhead = median(traced) / median(untraced) - 1;
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');

console.log(`# Scheduler benchmark (node ${process.version}, median of ${REPEAT})\n`);
printTable(
  ['measure', 'value', 'baseline', 'ratio', 'target'],
  [
    [
      `ns per scheduled step (1 task, ${STEPS} steps)`,
      nsStep.toFixed(1),
      `bare generator next(): ${nsBare.toFixed(1)}`,
      `${(nsStep / nsBare).toFixed(2)}x`,
      `≤ 3x: ${verdict(nsStep / nsBare <= 3)}`,
    ],
    [
      `pct runs/s (3 tasks, ${stepsPerRun.toFixed(0)} steps/run, ${RUNS} runs)`,
      runsPerSec.toFixed(0),
      'target 20,000',
      `${(runsPerSec / 20000).toFixed(2)}x`,
      `≥ 20,000: ${verdict(runsPerSec >= 20000)}`,
    ],
    ['pct steps/s', `${((runsPerSec * stepsPerRun) / 1e6).toFixed(2)} M`, '', '', ''],
    [
      'tracing overhead, no subscriber (explore above)',
      `${median(traced).toFixed(0)} ms`,
      `untraced copy: ${median(untraced).toFixed(0)} ms`,
      `${(overhead * 100).toFixed(1)}%`,
      `≤ 5%: ${verdict(overhead <= 0.05)}`,
    ],
  ],
);
