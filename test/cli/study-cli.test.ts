// `odpsim costs`, the cost options of `odpsim run` (--cost, --costs and the costs of its --json
// report) and `odpsim study` as a user runs them: list options checked per study, --no-plots,
// --json, the plots written to --out (exit 2 for a bad --out, 4 when a write fails after the
// run), the same seed giving the same report.
//
// Each odpsim process under tsx spends ~3 s of CPU starting (the TypeScript transform and the
// module graph, echarts included) before doing anything, and this file checks ~25 commands:
// most go through the CLI's own entry point in this process (`main(argv, io)`, what
// src/cli/main.ts calls, with its output and commander's stderr captured); two go through a
// real process (the source entry under tsx), started first and running while the rest do, to
// check the exit status and the streams as a shell sees them.
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { replay } from '../../src/check/explore.ts';
import { decodeToken } from '../../src/check/replay-token.ts';
import type { Io } from '../../src/cli/io.ts';
import type { ReplayJson, RunJson } from '../../src/cli/json.ts';
import { main } from '../../src/cli/program.ts';
import { decodeWorld, worldBuilder, worldSpec } from '../../src/cli/world.ts';
import { COST_NAMES, COSTS } from '../../src/cost/table.ts';
import type { Kernel } from '../../src/kernel/kernel.ts';
import { json, odpsimAsyncWith, type Ran, SRC } from './harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'odpsim-study-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A file in the temporary directory, written now. */
function tmpFile(name: string, text: string): string {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
}

const UNKNOWN = tmpFile('unknown.json', '{"mlx5.pf.nope": "1ms"}');
const REGULAR = tmpFile('a-file', 'not a directory\n');

/** Real processes, started before the in-process commands so that they overlap them. */
const spawned = {
  badCosts: odpsimAsyncWith(SRC, ['run', 'rdma-odp', '--json', '--costs', UNKNOWN]),
  outUnderFile: odpsimAsyncWith(SRC, [
    'study',
    'designs',
    '--mrs',
    '1',
    '--out',
    join(REGULAR, 'plots'),
  ]),
};

/**
 * Runs `odpsim ...args` in this process: the exit status main() returns, what the command
 * wrote through its Io, and what commander wrote to process.stderr (usage errors). One at a
 * time: the tests below run in order.
 */
async function odpsim(...args: string[]): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    out: (text) => {
      stdout += `${text}\n`;
    },
    err: (text) => {
      stderr += `${text}\n`;
    },
    stderrIsTTY: false,
    now: () => performance.now(),
    onInterrupt: () => () => {},
  };
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stderr.write;
  try {
    const status = await main(args, io);
    return { status, stdout, stderr };
  } finally {
    process.stderr.write = write;
  }
}

/** `odpsim study --json`, the parts these tests read. */
interface StudyJson {
  readonly command: 'study';
  readonly study: string;
  readonly title: string;
  readonly tables: readonly { title: string; header: string[]; rows: string[][] }[];
  readonly notes: readonly string[];
  readonly charts: readonly { id: string }[];
  readonly data: unknown;
  readonly files: readonly string[];
  readonly elapsedMs: number;
}

interface RnrData {
  readonly timers: number[];
  readonly retries: number[];
  readonly seed: number;
  readonly faultNs: number;
  readonly cells: { timer: number; retry: number; status: string; ns: number; rnrNaks: number }[];
}

function ok(r: Ran, what: string): void {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\n${r.stderr}`);
}

/** Exit 2, the message on stderr, nothing on stdout. */
function usageError(r: Ran, message: RegExp, what: string): void {
  assert.equal(r.status, 2, `${what}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, message, what);
  assert.equal(r.stdout, '', `${what}: printed on stdout`);
}

const RNR = ['study', 'rnr', '--timers', '1', '--retries', '0,7', '--no-plots', '--json'];

test('costs lists every cost with its value, what it charges and its source', async () => {
  const r = await odpsim('costs');
  ok(r, 'costs');
  assert.equal(r.stderr, '');
  const blocks = r.stdout.split('\n\n');
  for (const name of COST_NAMES) {
    const block = blocks.find((b) => b.startsWith(`${name}  `));
    assert.ok(block !== undefined, `${name} is not listed`);
    const lines = block.split('\n');
    assert.ok(lines.includes(`  ${COSTS[name].what}`), `${name}: what`);
    assert.ok(lines.includes(`  source: ${COSTS[name].source}`), `${name}: source line`);
  }
  // The drawn cost shows its quantiles; a per-page cost its growth.
  assert.match(r.stdout, /^mlx5\.pf\.trigger {2}p50 124(\.0)? µs, p95 159(\.0)? µs/m);
  assert.match(r.stdout, /^mlx5\.umr {2}7(\.00?)? µs for one page, \+ [\d.]+ ns per page/m);
  // The RNR timers are the verbs' encodings, listed after the costs.
  assert.match(r.stdout, /^ {2}0 = 655\.36 ms, 1 = 0\.01 ms, 2 = 0\.02 ms,.* 31 = 491\.52 ms$/m);
});

test('costs --json is the table, every name in table order', async () => {
  const r = await odpsim('costs', '--json');
  ok(r, 'costs --json');
  const j = json<{ command: string; costs: Record<string, unknown> }>(r);
  assert.equal(j.command, 'costs');
  assert.deepEqual(Object.keys(j.costs), COST_NAMES);
  assert.deepEqual(j.costs, JSON.parse(JSON.stringify(COSTS)));
});

test('run --json reports the virtual time charged by cost; --cost and --costs change it', async () => {
  const file = tmpFile(
    'costs.json',
    JSON.stringify({ 'mlx5.pf.resume': '2ms', 'mlx5.pf.trigger': '100us', 'cpu.fault': 0 }),
  );
  const plain = await odpsim('run', 'rdma-odp', '--json');
  const resume = await odpsim('run', 'rdma-odp', '--json', '--cost', 'mlx5.pf.resume=1ms');
  // --costs first, then --cost: the command line wins over the file.
  const fromFile = await odpsim(
    'run',
    'rdma-odp',
    '--json',
    '--costs',
    file,
    '--cost',
    'cpu.fault=1us',
  );
  ok(plain, 'run rdma-odp');
  ok(resume, 'run --cost');
  ok(fromFile, 'run --costs');
  const a = json<RunJson>(plain);
  const b = json<RunJson>(resume);
  const c = json<RunJson>(fromFile);
  for (const r of [a, b, c]) {
    assert.equal(r.ok, true);
    for (const name of Object.keys(r.costs)) assert.ok(COST_NAMES.includes(name as never), name);
  }

  const trigger = a.costs['mlx5.pf.trigger'];
  assert.ok(trigger !== undefined && trigger.count > 0, 'mlx5.pf.trigger charged');
  const q = COSTS['mlx5.pf.trigger'].base;
  assert.ok(trigger.ns >= trigger.count * q.min && trigger.ns <= trigger.count * (q.max + 25_000));
  const res = a.costs['mlx5.pf.resume']!;
  assert.equal(res.ns, res.count * 79_000);
  // Reported in table order.
  const order = Object.keys(a.costs).map((n) => COST_NAMES.indexOf(n as never));
  assert.deepEqual(
    order,
    [...order].sort((x, y) => x - y),
  );

  // --cost mlx5.pf.resume=1ms: every resume costs 1 ms, and the run takes longer.
  const res1 = b.costs['mlx5.pf.resume']!;
  assert.ok(res1.count > 0);
  assert.equal(res1.ns, res1.count * 1_000_000);
  assert.ok(res1.ns > res.ns);
  assert.ok(
    b.stats.virtualTimeNs > a.stats.virtualTimeNs,
    `${b.stats.virtualTimeNs} vs ${a.stats.virtualTimeNs}`,
  );

  // --costs FILE: 2 ms resumes, a fixed 100 µs trigger; cpu.fault 0 in the file, 1 µs by --cost.
  const res2 = c.costs['mlx5.pf.resume']!;
  assert.equal(res2.ns, res2.count * 2_000_000);
  const t2 = c.costs['mlx5.pf.trigger']!;
  assert.ok(t2.count > 0);
  // Fixed at 100 µs for one page; a multi-page fault adds the per-page part.
  assert.ok(t2.ns >= t2.count * 100_000 && t2.ns < t2.count * 130_000, String(t2.ns));
  const cpu = c.costs['cpu.fault']!;
  assert.ok(cpu.count > 0);
  assert.equal(cpu.ns, cpu.count * 1_000);
  assert.ok(c.stats.virtualTimeNs > b.stats.virtualTimeNs);
});

test('a bad --costs file or --cost is exit 2 naming what was wrong, nothing on stdout', async () => {
  const notJson = tmpFile('not-json.json', '{"mlx5.pf.resume": "1ms",');
  const array = tmpFile('array.json', '["mlx5.pf.resume=1ms"]');
  const cases: [string[], RegExp][] = [
    [['--costs', notJson], /not-json\.json: not JSON/],
    [['--costs', UNKNOWN], /unknown\.json: unknown cost "mlx5\.pf\.nope"/],
    [['--costs', array], /array\.json: expected an object of cost assignments/],
    [['--costs', join(tmp, 'missing.json')], /--costs .*missing\.json: cannot read \(ENOENT\)/],
    [['--cost', 'mlx5.pf.nope=1ms'], /unknown cost "mlx5\.pf\.nope"/],
    [['--cost', 'mlx5.pf.resume=soon'], /cost mlx5\.pf\.resume: "soon" is not a duration/],
    [['--cost', 'mlx5.pf.resume'], /--cost takes NAME=VALUE/],
    [['--cost', 'cpu.fault/byte=1ns'], /cost cpu\.fault does not grow/],
    // A value below a cost's least (checked before the run, not inside it), fixed or drawn.
    [
      ['--cost', 'hmm.retry=0'],
      /^error: cost hmm\.retry: the base must be a finite duration ≥ 1 ns, got 0/m,
    ],
    [
      ['--cost', 'hmm.retry=min:0,p50:1,p95:1,p99:1,max:1'],
      /cost hmm\.retry: min must be a finite duration ≥ 1 ns/,
    ],
    [['--cost', 'mlx5.umr/page/junk=10ns'], /--cost takes NAME=VALUE or NAME\/UNIT=VALUE/],
  ];
  for (const [args, message] of cases)
    usageError(await odpsim('run', 'rdma-odp', '--json', ...args), message, args.join(' '));
  // The study command takes the same options, checked before anything runs.
  usageError(
    await odpsim('study', 'rnr', '--timers', '1', '--no-plots', '--costs', UNKNOWN),
    /unknown\.json: unknown cost "mlx5\.pf\.nope"/,
    'study --costs',
  );
});

test('a bad --costs file, in a real process: exit 2, the error on stderr, nothing on stdout', async () => {
  const r = await spawned.badCosts;
  usageError(
    r,
    /^error: .*unknown\.json: unknown cost "mlx5\.pf\.nope" \(known: cpu\.fault/m,
    'spawned',
  );
  assert.match(r.stderr, /Usage: odpsim run/);
});

test('study rnr --timers 1 --retries 0,7 --no-plots --json: the cells of the grid', async () => {
  const r = await odpsim(...RNR);
  ok(r, 'study rnr');
  const j = json<StudyJson>(r);
  assert.equal(j.command, 'study');
  assert.equal(j.study, 'rnr');
  assert.deepEqual(j.files, [], '--no-plots writes nothing');
  assert.ok(j.tables.length > 0 && j.charts.length > 0 && j.notes.length > 0);
  const d = j.data as RnrData;
  assert.deepEqual(d.timers, [1]);
  assert.deepEqual(d.retries, [0, 7]);
  assert.equal(d.seed, 1);
  assert.deepEqual(
    d.cells.map((c) => [c.timer, c.retry, c.status]),
    [
      [1, 0, 'RNR_RETRY_EXC_ERR'],
      [1, 7, 'SUCCESS'],
    ],
  );
  // The fault is the HCA's ~220 µs; retrying for ever completes the WRITE after it.
  assert.ok(d.faultNs > 150_000 && d.faultNs < 400_000, String(d.faultNs));
  assert.ok(d.cells[1]!.ns >= d.faultNs && d.cells[1]!.rnrNaks > 1);
  assert.equal(d.cells[0]!.rnrNaks, 1);
});

test('study rnr with the same seed twice: the same --json but for elapsedMs; --cost changes it', async () => {
  const a = await odpsim(...RNR, '--seed', '3');
  const b = await odpsim(...RNR, '--seed', '3');
  const slow = await odpsim(...RNR, '--seed', '3', '--cost', 'mlx5.pf.resume=1ms');
  ok(a, 'first');
  ok(b, 'second');
  ok(slow, '--cost');
  const strip = (r: Ran) => {
    const { elapsedMs, ...rest } = json<StudyJson>(r);
    assert.equal(typeof elapsedMs, 'number');
    return rest;
  };
  const first = strip(a);
  assert.deepEqual(strip(b), first);
  assert.equal((first.data as RnrData).seed, 3);
  // The fault waits out the 1 ms resume instead of 79 µs.
  const fault = (first.data as RnrData).faultNs;
  const slower = (strip(slow).data as RnrData).faultNs;
  assert.ok(slower - fault > 900_000, `${slower} vs ${fault}`);
});

test("a list option of another study, or a bad value of the study's own, is exit 2", async () => {
  usageError(
    await odpsim('study', 'rnr', '--sizes', '4K', '--no-plots'),
    /--sizes is not an option of study rnr \(it takes --timers, --retries\)/,
    'rnr --sizes',
  );
  usageError(
    await odpsim('study', 'npf', '--scale', '3', '--no-plots'),
    /--scale must be a power of two/,
    'npf --scale 3',
  );
  usageError(
    await odpsim('study', 'designs', '--mrs', '1,x', '--no-plots'),
    /--mrs takes numbers, comma separated, got "x"/,
    'designs --mrs 1,x',
  );
  usageError(await odpsim('study', 'nope'), /unknown study "nope"/, 'study nope');
});

test('study designs --mrs 1 --out DIR writes designs.html and the SVG files it lists', async () => {
  const dir = join(tmp, 'plots', 'designs');
  const r = await odpsim('study', 'designs', '--mrs', '1', '--out', dir, '--json');
  ok(r, 'study designs');
  assert.equal(r.stderr, '');
  const j = json<StudyJson>(r);
  assert.equal(j.study, 'designs');
  const html = join(dir, 'designs.html');
  assert.equal(j.files[0], html);
  const svgs = j.files.slice(1);
  assert.equal(svgs.length, j.charts.length);
  assert.ok(svgs.length > 0);
  for (const f of j.files) assert.ok(existsSync(f), `${f} listed but not written`);
  for (const f of svgs) {
    assert.match(f, /designs-[a-z0-9-]+\.svg$/);
    assert.match(readFileSync(f, 'utf8'), /<svg[\s>]/, f);
  }
  const page = readFileSync(html, 'utf8');
  assert.match(page, /<html/i);
  assert.match(page, /<svg[\s>]/);
  // Nothing else was written.
  assert.deepEqual(readdirSync(dir).sort(), j.files.map((f) => f.slice(dir.length + 1)).sort());
  // The text report names the page.
  const text = await odpsim('study', 'designs', '--mrs', '1', '--out', dir);
  ok(text, 'study designs (text)');
  const line = `plots: ${html} (and ${svgs.length} SVG files)`;
  assert.ok(text.stdout.includes(line), `${line} not in\n${text.stdout}`);
});

test('study --out under a regular file, or on /proc: exit 2 before anything runs', async () => {
  for (const r of [
    await odpsim('study', 'designs', '--mrs', '1', '--out', join(REGULAR, 'plots')),
    await spawned.outUnderFile,
  ]) {
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /error: --out .*a-file\/plots: .*a-file is not a directory/);
  }
  assert.equal(readFileSync(REGULAR, 'utf8'), 'not a directory\n', 'the file is left alone');
  // A recursive mkdir under /proc never returns: the directory is made level by level.
  const proc = await odpsim('study', 'rnr', '--timers', '1', '--out', '/proc/odpsim-plots');
  assert.equal(proc.status, 2);
  assert.match(proc.stderr, /error: --out \/proc\/odpsim-plots: cannot write \(ENOENT\)/);
});

test('study plots that cannot be written after the run: exit 4, the report still printed', async () => {
  const dir = join(tmp, 'taken');
  mkdirSync(join(dir, 'designs.html'), { recursive: true });
  const r = await odpsim('study', 'designs', '--mrs', '1', '--out', dir);
  assert.equal(r.status, 4, r.stderr);
  assert.match(r.stdout, /^odpsim study designs: /);
  assert.match(r.stdout, /elapsed /);
  assert.doesNotMatch(r.stdout, /plots: /, 'no plots are claimed');
  assert.match(r.stderr, /could not write the plots to .*taken \(EISDIR\); the report is complete/);
});

test("a run's --cost travels in its replay token: the replay spends the same virtual time as the library's replay with those costs", async () => {
  const costs = ['--cost', 'cpu.fault=50us', '--cost', 'tlb.flush=20us'];
  const run = json<RunJson>(await odpsim('run', 'itree-nonblock-leak', '--json', ...costs));
  const token = run.failure!.token;
  const replayed = json<ReplayJson>(await odpsim('replay', token, '--json'));
  assert.equal(replayed.ok, false, 'the hang reproduces');
  const build = worldBuilder(worldSpec('itree-nonblock-leak', {}));
  const timeOf = (o: Parameters<typeof replay>[2]) => {
    let k: Kernel | null = null;
    replay(build, token, { ...o, onKernel: (x) => (k = x) });
    return (k as Kernel | null)!.now;
  };
  const withCosts = timeOf({
    costs: { 'cpu.fault': { base: 50_000 }, 'tlb.flush': { base: 20_000 } },
  });
  assert.equal(replayed.stats.virtualTimeNs, withCosts);
  assert.notEqual(timeOf({}), withCosts, 'the default table would spend another time');
  assert.deepEqual(decodeWorld(decodeToken(token).world).costs, {
    'cpu.fault': { base: 50_000 },
    'tlb.flush': { base: 20_000 },
  }); // A token from another odpsim, whose table had other costs, is refused by name.
  const world = JSON.stringify({ scenario: 'default', params: {}, costs: { nope: { base: 1 } } });
  assert.throws(() => decodeWorld(world), /EINVAL: unknown cost "nope"/);
});
