// odpsim as a user works with it every day: bad output paths and options refused before any run,
// edited tokens caught, unreachable mutants refused, parallel and sharded exploration giving the
// one-job result, Ctrl-C reporting where to resume, step limits that are not bugs, sweeps.
// Runs the source entry under tsx (no build). Explorations state strategy, seed and runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { customWorld } from '../../examples/custom-world.ts';
import type { ExploreJson, ReplayJson, RunJson, SweepJson } from '../../src/cli/json.ts';
import { reportWrites, writeOutputs } from '../../src/cli/outputs.ts';
import { explore } from '../../src/index.ts';
import { json, odpsimAsyncWith, type Ran, SRC } from './harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'odpsim-daily-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const odpsim = (...args: string[]): Promise<Ran> => odpsimAsyncWith(SRC, args);

/** The kvm mutant, found by pct seed 9 in run 203 of 0..299. */
const KVM = ['kvm-mirror', '--mutant', 'kvm.retry-ignores-in-progress', '--seed', '9'];

function usageError(r: Ran, message: RegExp, what: string): void {
  assert.equal(r.status, 2, `${what}: ${r.stderr}`);
  assert.match(r.stderr, message, what);
  assert.equal(r.stdout, '', what);
}

test('bad output paths and inapplicable options are refused before anything runs (exit 2, one line)', async () => {
  const cases: [string[], RegExp][] = [
    [['run', 'kvm-mirror', '--trace', '/proc/x.json'], /--trace \/proc\/x.json: cannot write/],
    [['run', 'kvm-mirror', '--log', tmp], /--log .*: is a directory/],
    [
      ['explore', 'kvm-mirror', '--log', join(tmp, 'no', 'such', 'dir.txt')],
      /cannot write \(ENOENT\)/,
    ],
    [
      ['explore', 'kvm-mirror', '--strategy', 'random', '--depth', '4'],
      /--depth is for --strategy pct only/,
    ],
    [['explore', 'kvm-mirror', '--preemptions', '1'], /--preemptions is for --strategy dfs only/],
    [['explore', 'kvm-mirror', '--strategy', 'dfs', '--jobs', '2'], /--jobs is not for dfs/],
    [
      ['explore', 'kvm-mirror', '--strategy', 'dfs', '--start-run', '5'],
      /--start-run and --shard are not for dfs/,
    ],
    [['explore', 'kvm-mirror', '--shard', '3/2'], /expected i\/n with 1 <= i <= n/],
    [['explore', 'kvm-mirror', '--runs', '2', '--shard', '1/3'], /--shard 1\/3 of 2 runs is empty/],
    [
      ['explore', 'dmirror-race', '--mutant', 'kvm.retry-ignores-in-progress'],
      /mutant kvm.retry-ignores-in-progress is not reached by dmirror-race .*Scenarios that reach it: .*kvm-mirror/,
    ],
    [['sweep', 'kvm-mirror', '--set', 'pages=0,4'], /parameter pages/],
    [['sweep', 'kvm-mirror', '--set', 'pages=4', '--set', 'pages=6'], /pages is given twice/],
    [['sweep', 'kvm-mirror', '--set', 'pages=9..3'], /not a range/],
  ];
  const results = await Promise.all(cases.map(([args]) => odpsim(...args)));
  for (const [i, [args, message]] of cases.entries())
    usageError(results[i]!, message, args.join(' '));
  assert.ok(!existsSync('/proc/x.json'));
});

test('a write that fails after the run is reported beside the report, which is complete (exit 4 when clean)', () => {
  const lines: string[] = [];
  const io = {
    out: () => {},
    err: (l: string) => lines.push(l),
    stderrIsTTY: false,
    now: () => 0,
    onInterrupt: () => () => {},
  };
  const w = writeOutputs([
    { path: join(tmp, 'ok.txt'), data: () => 'fine' },
    { path: join(tmp, 'gone', 'x.txt'), data: () => 'lost' },
    { path: undefined, data: () => 'not asked' },
  ]);
  assert.deepEqual(w.written, [join(tmp, 'ok.txt')]);
  assert.equal(readFileSync(join(tmp, 'ok.txt'), 'utf8'), 'fine');
  assert.equal(reportWrites(io, w, 0), 4);
  assert.equal(reportWrites(io, w, 1), 1, 'a found bug keeps its status');
  assert.match(lines[0]!, /could not write .*gone\/x.txt \(ENOENT\); the report is complete/);
});

test('--jobs 2, shards and --start-run find what one job finds (pct seed 9, runs 0..299)', async () => {
  const base = ['explore', ...KVM, '--runs', '300', '--json'];
  const [one, two, s1, s2, resumed] = await Promise.all([
    odpsim(...base, '--jobs', '1'),
    odpsim(...base, '--jobs', '2'),
    odpsim(...base, '--jobs', '1', '--shard', '1/2'),
    odpsim(...base, '--jobs', '1', '--shard', '2/2'),
    odpsim('explore', ...KVM, '--json', '--start-run', '150', '--runs', '150'),
  ]);
  const [a, b, c, d, e] = [one, two, s1, s2, resumed].map((r) => json<ExploreJson>(r));
  assert.equal(one.status, 1, one.stderr);
  assert.equal(a!.failure?.run, 203);
  assert.equal(a!.result.runs, 204);
  // Same runs, steps and minimised token, whatever the threads.
  assert.equal(b!.options.jobs, 2);
  assert.deepEqual(b!.result, a!.result);
  assert.deepEqual(b!.failure, a!.failure);
  // Shard 1 (runs 0..149) is clean; shard 2 (150..299) fails where the whole range does.
  assert.equal(s1.status, 0);
  assert.deepEqual([c!.result.firstRun, c!.result.nextRun], [0, 150]);
  assert.equal(s2.status, 1);
  assert.equal(d!.result.firstRun, 150);
  assert.equal(d!.failure?.token, a!.failure?.token);
  assert.equal(e!.failure?.token, a!.failure?.token);
  assert.equal(c!.result.steps + d!.result.steps, a!.result.steps);
  assert.match(s2.stdout, /./);
});

/** Explores kvm-mirror on `jobs` threads and sends Ctrl-C at its first progress line. */
function interrupted(jobs: string): Promise<Ran> {
  let sent = false;
  return odpsimAsyncWith(
    SRC,
    ['explore', 'kvm-mirror', '--runs', '1000000', '--jobs', jobs],
    (err, kill) => {
      // The first progress line (every 5 s without a terminal) proves runs are under way.
      if (!sent && /runs \(/.test(err)) {
        sent = true;
        kill('SIGINT');
      }
    },
  );
}

test('Ctrl-C during explore (1 or 2 jobs) prints the runs done and where to resume; --start-run goes on from there (pct seed 1)', async () => {
  const [one, two] = await Promise.all([interrupted('1'), interrupted('2')]);
  let next = 0;
  for (const r of [one, two]) {
    assert.equal(r.status, 130, r.stderr);
    const m =
      /Interrupted: runs 0\.\.([\d,]+) are done; to go on, add --start-run (\d+) and --runs (\d+) to the same command/.exec(
        r.stdout,
      );
    assert.ok(m !== null, r.stdout);
    next = Number(m[2]);
    assert.equal(Number(m[1]!.replaceAll(',', '')), next - 1);
    assert.equal(Number(m[3]), 1_000_000 - next);
    assert.match(r.stdout, new RegExp(`Explored ${next.toLocaleString('en-US')} runs`));
  }
  const more = await odpsim(
    'explore',
    'kvm-mirror',
    '--start-run',
    String(next),
    '--runs',
    '20',
    '--json',
  );
  assert.equal(more.status, 0, more.stderr);
  assert.equal(json<ExploreJson>(more).result.firstRun, next);
});

test('a run stopped by the step limit is counted and explained, not called a bug (pct seed 1, 5 runs)', async () => {
  const [j, t] = await Promise.all([
    odpsim('explore', 'kvm-mirror', '--max-steps', '50', '--runs', '5', '--json'),
    odpsim('explore', 'kvm-mirror', '--max-steps', '50', '--runs', '5'),
  ]);
  assert.equal(j.status, 0, j.stderr);
  const r = json<ExploreJson>(j);
  assert.equal(r.ok, true);
  assert.equal(r.result.stepLimited, 5);
  assert.match(
    t.stdout,
    /5 runs stopped at the step limit \(50 steps\).*raise it with --max-steps/,
  );
  // Without --max-steps the budget follows the world's size: 10x its run without preemption.
  const big = json<ExploreJson>(
    await odpsim('explore', 'default', '--set', 'pages=64', '--runs', '1', '--json'),
  );
  assert.ok(big.options.maxSteps >= 100_000, String(big.options.maxSteps));
});

test('an edited token is refused; --timeline full adds the locks the default leaves out', async () => {
  const found = json<ExploreJson>(await odpsim('explore', ...KVM, '--runs', '300', '--json'));
  const token = found.failure!.token;
  const edited = token.replace('.pct.', '.random.');
  const [bad, protocol, full] = await Promise.all([
    odpsim('replay', edited),
    odpsim('replay', token, '--json'),
    odpsim('replay', token, '--json', '--timeline', 'full'),
  ]);
  usageError(bad, /the replay token was altered or truncated/, 'edited token');
  const p = json<ReplayJson>(protocol).timeline;
  const f = json<ReplayJson>(full).timeline;
  const locks = (t: readonly { event: string }[]) =>
    t.filter((e) => e.event.startsWith('lock')).length;
  assert.equal(locks(p), 0);
  assert.ok(locks(f) > 0);
  assert.ok(
    p.some((e) => e.event === 'seq-check'),
    'the sequence checks are protocol events',
  );
});

test('run --trace and --log write the run; the report names them', async () => {
  const trace = join(tmp, 'run.json');
  const log = join(tmp, 'run.txt');
  const r = await odpsim('run', 'kvm-mirror', '--trace', trace, '--log', log, '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(json<RunJson>(r).files, { trace, log, html: null });
  assert.ok(JSON.parse(readFileSync(trace, 'utf8')).traceEvents.length > 10);
  assert.match(readFileSync(log, 'utf8'), /mmu-start/);
});

test('sweep explores every combination and tabulates it; a mutant shows where it is found (pct/random seed 9, 300 runs)', async () => {
  const [clean, found] = await Promise.all([
    odpsim(
      'sweep',
      'kvm-mirror',
      '--set',
      'pages=4,6',
      '--strategy',
      'pct,random',
      '--runs',
      '10',
      '--json',
    ),
    odpsim('sweep', ...KVM, '--set', 'vcpus=2', '--runs', '300'),
  ]);
  assert.equal(clean.status, 0, clean.stderr);
  const r = json<SweepJson>(clean);
  assert.deepEqual(
    r.rows.map((x) => `${x.params.pages}/${x.strategy}/${x.outcome}/${x.runs}`),
    ['4/pct/clean/10', '4/random/clean/10', '6/pct/clean/10', '6/random/clean/10'],
  );
  assert.equal(found.status, 1, found.stderr);
  assert.match(found.stdout, /vcpus +strategy +runs +result\n +2 +pct +204 +coherence in run 203/);
  assert.match(found.stdout, /vcpus=2 pct: odpsim replay odp2\./);
  assert.match(found.stdout, /1 of 1 combinations explored found a violation;/);
});

test('replay --world replays a token on a user module (the library example, random seed 1); a module without a world is refused', async () => {
  const found = explore(customWorld({ bug: true }), { strategy: 'random', seed: 1, runs: 1000 });
  assert.ok(found.failure !== null);
  const env = { ...process.env, ODPSIM_EXAMPLE_BUG: '1' };
  const r = spawnSync(
    process.execPath,
    [...SRC, 'replay', found.failure.token, '--world', 'examples/custom-world.ts', '--json'],
    { encoding: 'utf8', env },
  );
  assert.equal(r.status, 1, r.stderr);
  const rep = JSON.parse(r.stdout) as ReplayJson;
  assert.equal(rep.failure?.message, found.failure.bug.message);
  assert.equal(rep.scenario, 'examples/custom-world.ts');
  const [missing, notAWorld] = await Promise.all([
    odpsim('replay', found.failure.token, '--world', 'examples/nope.ts'),
    odpsim('replay', found.failure.token, '--world', 'src/cli/report.ts'),
  ]);
  usageError(missing, /--world examples\/nope.ts: cannot load it/, 'missing module');
  usageError(notAWorld, /exports no world/, 'module without a world');
});

test('Ctrl-C during a dfs exploration says it cannot resume from a run (dfs bound 2)', async () => {
  let sent = false;
  const r = await odpsimAsyncWith(
    SRC,
    ['explore', 'default', '--strategy', 'dfs', '--runs', '1000000'],
    (err, kill) => {
      if (!sent && /runs \(/.test(err)) {
        sent = true;
        kill('SIGINT');
      }
    },
  );
  assert.equal(r.status, 130, r.stderr);
  assert.match(r.stdout, /Interrupted: runs 0\.\.[\d,]+ are done; dfs cannot resume from a run/);
  assert.doesNotMatch(r.stdout, /--start-run/);
});
