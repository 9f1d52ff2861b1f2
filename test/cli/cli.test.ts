// The odpsim command as a user runs it: the built binary (dist/cli/main.js), its exit statuses,
// its --json shapes, and replaying what explore found. Explorations state strategy, seed and runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodeToken } from '../../src/check/replay-token.ts';
import type { ExploreJson, ListJson, ReplayJson, RunJson } from '../../src/cli/json.ts';
import { BIN, json, odpsimAsyncWith, odpsimWith, type Ran } from './harness.ts';

let tmp = '';

const odpsim = (...args: string[]): Ran => odpsimWith(BIN, ...args);
const odpsimAsync = (...args: string[]): Promise<Ran> => odpsimAsyncWith(BIN, args);

before(() => {
  const tsc = join('node_modules', '.bin', 'tsc');
  const b = spawnSync(tsc, ['-p', 'tsconfig.build.json'], { encoding: 'utf8' });
  assert.equal(b.status, 0, `build failed:\n${b.stdout}${b.stderr}`);
  const assets = spawnSync(process.execPath, ['scripts/copy-assets.mjs'], { encoding: 'utf8' });
  assert.equal(assets.status, 0, assets.stderr);
  tmp = mkdtempSync(join(tmpdir(), 'odpsim-cli-'));
});

after(() => {
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
});

test('odpsim with no argument runs the default scenario and exits 0', () => {
  const r = odpsim();
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /scenario {2}default/);
  assert.match(r.stdout, /Statistics/);
  assert.match(r.stdout, /coherence +pass/);
  assert.match(r.stdout, /Result: ok/);
});

test('run --json: scenario, params, statistics, every oracle passing; deterministic but for elapsedMs', () => {
  const a = odpsim('run', 'kvm-mirror', '--set', 'pages=6', '--json');
  assert.equal(a.status, 0, a.stderr);
  const r = json<RunJson>(a);
  assert.equal(r.command, 'run');
  assert.equal(r.scenario, 'kvm-mirror');
  assert.equal(r.params.pages, 6);
  assert.deepEqual(r.mutants, []);
  assert.equal(r.ok, true);
  assert.equal(r.failure, null);
  for (const key of [
    'steps',
    'virtualTimeNs',
    'cpuFaults',
    'devFaults',
    'devRetries',
    'invalidations',
  ] as const)
    assert.equal(typeof r.stats[key], 'number', key);
  assert.ok(r.stats.virtualTimeNs > 0);
  assert.ok(r.stats.cpuFaults > 0 && r.stats.devFaults > 0 && r.stats.invalidations > 0);
  assert.ok(r.stats.mirrored.distinctPages > 0);
  assert.ok(r.stats.frames.peak > 0);
  assert.ok(r.stats.tlb.cpuFills > 0 && r.stats.tlb.cpuFlushes > 0);
  assert.equal(r.stats.tlb.iotlbFills, 0, 'kvm-mirror has no SVA device');
  assert.deepEqual(
    r.oracles.map((o: { name: string; verdict: string }) => `${o.name}:${o.verdict}`),
    [
      'coherence:pass',
      'pairing:pass',
      'translation:pass',
      'lifetime:pass',
      'liveness:pass',
      'io-mappings:pass',
      'tlb:pass',
      'leaks:pass',
      'data:pass',
      'kernel:pass',
    ],
  );
  assert.ok((r.oracles[0]?.checks ?? 0) > 0);
  const b = json<RunJson>(odpsim('run', 'kvm-mirror', '--set', 'pages=6', '--json'));
  assert.deepEqual({ ...b, elapsedMs: 0 }, { ...r, elapsedMs: 0 });
});

test("run reports the HCAs' ODP counters (text and --json), none for a world without an HCA", () => {
  const a = odpsim('run', 'rdma-odp', '--set', 'design=2020', '--json');
  assert.equal(a.status, 0, a.stderr);
  const r = json<RunJson>(a);
  assert.deepEqual(
    r.counters.map((d) => d.device),
    ['mlx5_1', 'mlx5_0'],
  );
  const server = r.counters[0]!.counters;
  assert.deepEqual(Object.keys(server), [
    'page_faults',
    'page_invalidations',
    'page_prefetch',
    'prefetch',
    'fault_contentions',
    'num_mrs_not_found',
  ]);
  assert.ok(server.page_faults! > 0 && server.page_invalidations! > 0 && server.prefetch! > 0);
  const text = odpsim('run', 'rdma-odp', '--set', 'design=2020');
  assert.match(text.stdout, /ODP counters\n {2}mlx5_1 {2}page_faults \d+, page_invalidations \d+/);
  const none = json<RunJson>(odpsim('run', 'kvm-mirror', '--set', 'pages=6', '--json'));
  assert.deepEqual(none.counters, []);
});

test('study designs: one row per design and MR count (--json); unknown studies and bad counts are usage errors', () => {
  const a = odpsim('study', 'designs', '--mrs', '1,20', '--json', '--no-plots');
  assert.equal(a.status, 0, a.stderr);
  const r = JSON.parse(a.stdout) as { data: { rows: { design: string; mrs: number }[] } };
  assert.deepEqual(
    r.data.rows.map((x) => `${x.design}@${x.mrs}`),
    ['2014@1', '2018@1', '2020@1', 'list@1', '2014@20', '2018@20', '2020@20', 'list@20'],
  );
  const text = odpsim('study', 'designs', '--mrs', '2', '--no-plots');
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /2020 \(interval notifier\) +2 /);
  for (const args of [
    ['study', 'nope'],
    ['study', 'designs', '--mrs', '0'],
    ['study', 'designs', '--mrs', 'x'],
  ]) {
    const bad = odpsim(...args);
    assert.equal(bad.status, 2, args.join(' '));
    assert.equal(bad.stdout, '');
    assert.match(bad.stderr, /error: (unknown study|--mrs takes|study designs: MR count 0)/);
  }
});

test('list --json: scenarios with their parameters, and the mutants', () => {
  const a = odpsim('list', '--json');
  assert.equal(a.status, 0, a.stderr);
  const r = json<ListJson>(a);
  assert.equal(r.command, 'list');
  assert.equal(r.defaultScenario, 'default');
  const kvm = r.scenarios.find((s: { name: string }) => s.name === 'kvm-mirror');
  assert.ok(kvm !== undefined);
  for (const p of kvm.params)
    assert.deepEqual(Object.keys(p).sort(), ['default', 'description', 'max', 'min', 'name']);
  assert.ok(r.mutants.some((m: { name: string }) => m.name === 'kvm.retry-ignores-in-progress'));
  const text = odpsim('list');
  assert.equal(text.status, 0);
  assert.match(text.stdout, /kvm-mirror/);
  assert.match(text.stdout, /--set pages=4/);
  // A scenario that reproduces a kernel bug at its defaults says so, and how to get it clean.
  assert.equal(kvm.finding, null);
  const leak = r.scenarios.find((s: { name: string }) => s.name === 'itree-nonblock-leak');
  assert.deepEqual(leak?.finding, {
    rule: 'liveness',
    doc: 'docs/findings/itree-nonblock-leak.md',
    clean: { fix: 1 },
  });
  assert.match(
    text.stdout,
    /at its defaults it reproduces a kernel bug \(liveness; docs\/findings\/itree-nonblock-leak.md\); clean with --set fix=1/,
  );
});

test('run of a world that reproduces a kernel finding says so before the BUG, and names the fix', () => {
  const bug = odpsim('run', 'nouveau-exit');
  assert.equal(bug.status, 1, bug.stderr);
  assert.match(
    bug.stdout,
    /finding {3}runs the kernel as it is: a known bug \(coherence, docs\/findings\/nouveau-exit-release.md\); --set fix=1 runs the proposed fix/,
  );
  assert.match(bug.stdout, /Result: BUG coherence/);
  const fixed = odpsim('run', 'nouveau-exit', '--set', 'fix=1');
  assert.equal(fixed.status, 0, fixed.stderr);
  assert.match(
    fixed.stdout,
    /finding {3}runs the proposed fix of docs\/findings\/nouveau-exit-release.md/,
  );
  assert.doesNotMatch(odpsim('run', 'kvm-mirror').stdout, /finding/);
});

test('explore of the correct protocol is clean: exit 0 (pct seed 1 and dfs bound 2, 40 runs each)', () => {
  const a = odpsim('explore', 'kvm-mirror', '--runs', '40', '--json');
  assert.equal(a.status, 0, a.stderr);
  const r = json<ExploreJson>(a);
  assert.equal(r.command, 'explore');
  assert.equal(r.ok, true);
  assert.equal(r.failure, null);
  assert.deepEqual(r.options, {
    strategy: 'pct',
    runs: 40,
    seed: 1,
    depth: 3,
    preemptions: 2,
    maxSteps: 100_000,
    startRun: 0,
    shard: null,
    jobs: 1,
    timeline: 'protocol',
  });
  assert.equal(r.result.runs, 40);
  assert.equal(r.result.stoppedBy, 'runs');
  const d = odpsim('explore', 'kvm-mirror', '--strategy', 'dfs', '--runs', '40');
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stdout, /Result: no violation/);
  assert.match(d.stdout, /dfs: 40 schedules/);
});

test('explore finds a mutant (exit 1, pct seed 9, ≤ 300 runs); replay reproduces it and writes the traces', async () => {
  const args = ['explore', 'kvm-mirror', '--strategy', 'pct', '--seed', '9', '--runs', '300'];
  const [a, text] = await Promise.all([
    odpsimAsync(...args, '--mutant', 'kvm.retry-ignores-in-progress', '--json'),
    odpsimAsync(...args, '--mutant', 'kvm.retry-ignores-in-progress'),
  ]);
  assert.equal(a.status, 1, a.stderr);
  const r = json<ExploreJson>(a);
  assert.equal(r.ok, false);
  assert.deepEqual(r.mutants, ['kvm.retry-ignores-in-progress']);
  const f = r.failure;
  assert.ok(f !== null);
  assert.equal(f.rule, 'coherence');
  assert.match(f.message, /^BUG coherence in task \w+.*device kvm (still maps|can still write)/);
  assert.match(f.token, /^odp2\.pct\./);
  assert.ok(f.steps > 0 && f.original.steps > 0);
  assert.equal(f.timeline.at(-1)?.event, 'bug');
  assert.ok(f.timeline.some((e: { event: string }) => e.event === 'mmu-start'));
  assert.ok(f.timeline.some((e: { event: string }) => e.event === 'dev-map'));

  assert.equal(text.status, 1);
  assert.match(text.stdout, /Violation found in run/);
  assert.match(text.stdout, /Timeline of the minimised schedule/);
  assert.ok(text.stdout.includes(`Replay token: ${f.token}`));

  const trace = join(tmp, 'trace.json');
  const log = join(tmp, 'log.txt');
  const [p, t] = await Promise.all([
    odpsimAsync('replay', f.token, '--trace', trace, '--log', log, '--json'),
    odpsimAsync('replay', f.token),
  ]);
  assert.equal(p.status, 1, p.stderr);
  const rp = json<ReplayJson>(p);
  assert.equal(rp.command, 'replay');
  assert.equal(rp.ok, false);
  assert.equal(rp.scenario, 'kvm-mirror');
  assert.equal(rp.failure?.message, f.message);
  assert.deepEqual(rp.timeline, f.timeline);
  assert.equal(rp.oracles.find((o) => o.name === 'coherence')?.verdict, 'fail');
  assert.deepEqual(rp.files, { trace, log, html: null });
  const chrome = JSON.parse(readFileSync(trace, 'utf8'));
  assert.ok(Array.isArray(chrome.traceEvents) && chrome.traceEvents.length > 10);
  assert.ok(
    chrome.traceEvents.some(
      (e: { name: string; args?: { name?: string } }) =>
        e.name === 'thread_name' && e.args?.name === 'mutator',
    ),
  );
  assert.ok(chrome.traceEvents.some((e: { name: string }) => e.name === 'bug'));
  assert.match(readFileSync(log, 'utf8'), / bug rule="coherence"/);

  assert.equal(t.status, 1);
  assert.ok(t.stdout.includes(`Result: reproduced ${f.message}`));
});

test('usage errors exit 2 with a message and the usage line on stderr, nothing on stdout', async () => {
  const cases: [string[], RegExp][] = [
    [['explore', 'nope'], /unknown scenario "nope" \(known: .*kvm-mirror/],
    [['explore'], /missing required argument 'scenario'/],
    [['explore', 'kvm-mirror', '--mutant', 'nope'], /unknown mutant "nope"/],
    [['explore', 'kvm-mirror', '--set', 'nope=1'], /has no parameter "nope"/],
    [['explore', 'kvm-mirror', '--set', 'pages=0'], /parameter pages .* got 0/],
    [['explore', 'kvm-mirror', '--set', 'pages'], /expected name=integer/],
    [['explore', 'kvm-mirror', '--runs', '0'], /--runs.*expected an integer/],
    [['explore', 'kvm-mirror', '--strategy', 'bfs'], /Allowed choices are random, pct, dfs/],
    [['run', 'kvm-mirror', '--frobnicate'], /unknown option '--frobnicate'/],
    [['run', 'nope'], /unknown scenario "nope"/],
    [['replay', 'not-a-token'], /not an odpsim replay token/],
    [
      [
        'replay',
        encodeToken({
          strategy: 'pct',
          seed: 1,
          maxSteps: 1,
          decisions: [],
          mutants: [],
          world: '',
        }),
      ],
      /names no odpsim scenario/,
    ],
  ];
  const results = await Promise.all(cases.map(([args]) => odpsimAsync(...args)));
  for (const [i, [args, message]] of cases.entries()) {
    const r = results[i]!;
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.match(r.stderr, /Usage: odpsim \w+ /, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
});
