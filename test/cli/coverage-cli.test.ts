// `odpsim explore --coverage` as a user runs it (the source entry under tsx): the text sections,
// the JSON, the same coverage from one job or two (runs are deterministic), and coverage of the
// runs explored when a violation or Ctrl-C ends the exploration. Explorations state strategy,
// seed and runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CoverageReport } from '../../src/check/coverage.ts';
import { COVERAGE_UNIVERSE } from '../../src/cli/coverage-report.ts';
import type { ExploreJson } from '../../src/cli/json.ts';
import { MM_PATHS } from '../../src/mm/mm-path.ts';
import { json, odpsimAsyncWith, type Ran, SRC } from './harness.ts';

const odpsim = (...args: string[]): Promise<Ran> => odpsimAsyncWith(SRC, args);

/** The default scenario, pct seed 1, 12 runs. */
const DEFAULT = ['explore', 'default', '--runs', '12', '--coverage'];

/** Every section's reached and missing items make up its universe, and the counts agree. */
function checkShape(c: CoverageReport): void {
  const n = MM_PATHS.length;
  for (const [s, total] of [
    [c.callbacks, COVERAGE_UNIVERSE.callbacks.length],
    [c.paths, n],
    [c.races, (n * (n + 1)) / 2],
  ] as const) {
    assert.equal(s.total, total);
    assert.equal(Object.keys(s.reached).length + s.missing.length, total);
    for (const runs of Object.values(s.reached)) assert.ok(runs >= 1 && runs <= c.runs);
    assert.deepEqual(s.outside, {}, 'every client names its kind, every path is listed');
    for (const item of Object.keys(s.conditional)) assert.ok(s.missing.includes(item), item);
  }
}

test('explore default --coverage (pct seed 1, 12 runs): counts, reached, missing; --json the same; --jobs 2 the same coverage', async () => {
  const [text, one, two, plain] = await Promise.all([
    odpsim(...DEFAULT),
    odpsim(...DEFAULT, '--json', '--jobs', '1'),
    odpsim(...DEFAULT, '--json', '--jobs', '2'),
    odpsim('explore', 'default', '--runs', '2', '--json'),
  ]);
  assert.equal(text.status, 0, text.stderr);
  const out = text.stdout;
  // After the result, in this order: counts, reached, missing.
  const at = (s: string) => {
    const i = out.indexOf(s);
    assert.ok(i >= 0, `${s} in\n${out}`);
    return i;
  };
  assert.ok(at('Result: no violation found') < at('Coverage of the 12 runs explored'));
  assert.ok(
    at('Coverage of the 12 runs') < at('\nReached:') && at('\nReached:') < at('\nMissing:'),
  );
  assert.match(out, /notifier callbacks \(client, callback, event\) +\d+ of \d+/);
  assert.match(
    out,
    new RegExp(
      `mm paths +\\d+ of ${MM_PATHS.length} \\(of the \\d+ missing, 1 needs more than correct code\\)\\n`,
    ),
  );
  assert.match(out, /racing pairs of mm paths +\d+ of \d+ \(not every pair can race\)/);
  // The world's dmirror sees munmap's UNMAP in every run; it never mirrors through KVM.
  assert.match(out, /dmirror: invalidate \(UNMAP 12,/);
  assert.match(out, /mm paths: do_mmap 12,/);
  assert.match(out, /\n {4}kvm: invalidate_range_start \(UNMAP, CLEAR/);
  assert.match(out, /racing pairs: [\d,]+, of which [\d,]+ with a path that never ran/);
  // Its SVA device flushes from the hook: range_start is the mutant's, listed apart.
  assert.match(
    out,
    /that need more than correct code, by when they run:\n(.*\n)*? {4}under the mutant sva\.flush-at-range-start:\n {6}sva: invalidate_range_start \(UNMAP/,
  );

  assert.equal(one.status, 0, one.stderr);
  assert.equal(two.status, 0, two.stderr);
  const a = json<ExploreJson>(one);
  const b = json<ExploreJson>(two);
  assert.equal(b.options.jobs, 2);
  assert.ok(a.coverage !== null && b.coverage !== null);
  checkShape(a.coverage);
  assert.equal(a.coverage.runs, 12);
  assert.equal(a.coverage.paths.reached.handle_mm_fault, 12);
  assert.equal(a.coverage.callbacks.reached['dmirror invalidate UNMAP'], 12);
  assert.ok(Object.keys(a.coverage.races.reached).length > 0, 'pct preempts: some paths race');
  assert.ok(a.coverage.callbacks.missing.includes('kvm release'));
  assert.equal(a.coverage.callbacks.conditional['kvm release'], undefined);
  assert.equal(
    a.coverage.callbacks.conditional['sva invalidate_range_start CLEAR'],
    'under the mutant sva.flush-at-range-start',
  );
  assert.deepEqual(b.coverage, a.coverage);

  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(json<ExploreJson>(plain).coverage, null);
});

test('explore --coverage with a violation covers the runs up to the failing one (pct seed 1, dmirror-race, mm.free-before-start)', async () => {
  const args = ['explore', 'dmirror-race', '--mutant', 'mm.free-before-start', '--runs', '10'];
  const [j, t] = await Promise.all([
    odpsim(...args, '--coverage', '--json'),
    odpsim(...args, '--coverage'),
  ]);
  assert.equal(j.status, 1, j.stderr);
  const r = json<ExploreJson>(j);
  assert.ok(r.failure !== null && r.coverage !== null);
  checkShape(r.coverage);
  assert.equal(r.coverage.runs, r.result.runs);
  assert.equal(r.coverage.runs, r.failure.run + 1);
  assert.ok((r.coverage.paths.reached.do_vmi_munmap ?? 0) >= 1);
  assert.equal(t.status, 1);
  assert.ok(t.stdout.indexOf('Replay token:') < t.stdout.indexOf('Coverage of the'));
});

test('Ctrl-C during explore --coverage --jobs 2 reports the coverage of the runs done (swarm, pct seed 1)', async () => {
  let sent = false;
  const r = await odpsimAsyncWith(
    SRC,
    ['explore', 'swarm', '--runs', '1000000', '--jobs', '2', '--coverage', '--json'],
    (err, kill) => {
      // A progress line (every 5 s without a terminal) with runs done: swarm's short runs (a few
      // ms) leave a done prefix on a loaded machine too, where default's (80 ms) may not.
      const done = [...err.matchAll(/([\d,]+)\/[\d,]+ runs \(/g)].map((m) =>
        Number(m[1]!.replaceAll(',', '')),
      );
      if (!sent && done.some((n) => n >= 20)) {
        sent = true;
        kill('SIGINT');
      }
    },
  );
  assert.equal(r.status, 130, r.stderr);
  const j = json<ExploreJson>(r);
  assert.equal(j.result.stoppedBy, 'interrupted');
  assert.ok(j.coverage !== null);
  assert.equal(j.coverage.runs, j.result.runs);
  assert.ok(j.result.runs > 0, 'some runs were done in 5 s');
  assert.equal(j.coverage.paths.reached.do_mmap, j.result.runs);
});
