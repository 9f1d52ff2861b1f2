// The web view in a real browser (Debian's chromium, driven by playwright-core): the file
// `odpsim replay --html` writes for a known mutant's counterexample opens with no JavaScript
// error, marks the violation at the oracle's step, moves its cursor as the trace says, and
// colours exactly the cells the coherence oracle found incoherent. The counterexample:
// dmirror.no-read-retry on dmirror-race, pct seed 1, within 100 runs. A screenshot is kept in
// test-artifacts/ (ODPSIM_UPDATE_SCREENSHOT=1 also refreshes the README's docs/img/web-view.png).
// The TLB rows are checked on a stale-tlb counterexample: mm.mremap-flush-after-unlock on sva.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import type { ExploreJson, ReplayJson } from '../../src/cli/json.ts';
import { worldBuilder, worldSpec } from '../../src/cli/world.ts';
import { explore, replay, TraceRecorder } from '../../src/index.ts';
import { json, odpsimAsyncWith, SRC } from '../cli/harness.ts';
import { useChromium } from './chromium.ts';

const web = useChromium('web');
const tmp = web.tmp;

/** The counterexample's token, found by the library as `odpsim explore` would. */
function counterexample(mutants: string[]): string {
  const spec = worldSpec('dmirror-race', {});
  const r = explore(worldBuilder(spec), {
    strategy: 'pct',
    seed: 1,
    runs: 100,
    mutants,
    world: JSON.stringify({ scenario: 'dmirror-race', params: spec.params }),
  });
  assert.ok(r.failure !== null, 'the mutant is found');
  return r.failure.token;
}

/** Opens `file`, failing on any page error or console error; waits until it has drawn. */
async function open(file: string): Promise<{ page: Page; errors: string[] }> {
  const page = await web.browser().newPage({ viewport: { width: 1400, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`file://${file}`);
  await page.waitForFunction(
    () => (globalThis as unknown as { odpsimView?: { ready: boolean } }).odpsimView?.ready === true,
  );
  return { page, errors };
}

/** The CPU entry of each page at each step, from the trace itself (not the view's model). */
function cpuEntries(token: string): (step: number, page: string) => string {
  let rec: TraceRecorder | null = null;
  const spec = worldSpec('dmirror-race', {});
  replay(worldBuilder(spec), token, {
    onKernel: (k) => {
      rec = new TraceRecorder(k.trace);
    },
  });
  const changes: { step: number; page: string; state: string }[] = [];
  for (const e of (rec as TraceRecorder | null)!.events) {
    if (e.type === 'pte-set')
      changes.push({
        step: e.step,
        page: `mm${e.mm} 0x${e.addr.toString(16)}`,
        state: `${e.writable ? 'writable' : 'read-only'}, pfn ${e.pfn}.${e.gen}`,
      });
    if (e.type === 'pte-clear')
      changes.push({
        step: e.step,
        page: `mm${e.mm} 0x${e.addr.toString(16)}`,
        state: e.to ?? 'absent',
      });
  }
  return (step, page) => {
    let state = 'absent';
    for (const c of changes) if (c.step <= step && c.page === page) state = c.state;
    return state;
  };
}

test('the web view of a counterexample: violation at its step, cursor and panel follow the trace, exactly the incoherent cells coloured', async () => {
  const token = counterexample(['dmirror.no-read-retry']);
  const file = join(tmp, 'view.html');
  const r = await odpsimAsyncWith(SRC, [
    'replay',
    token,
    '--html',
    file,
    '--timeline',
    'full',
    '--json',
  ]);
  assert.equal(r.status, 1, r.stderr);
  const rep = json<ReplayJson>(r);
  assert.equal(rep.files.html, file);
  const bugStep = rep.timeline.at(-1)!.step;
  const { page, errors } = await open(file);

  // The violation is marked at the step the oracle fired, with its message.
  assert.equal(await page.getAttribute('#violation', 'data-step'), String(bugStep));
  assert.ok((await page.textContent('#violation'))!.includes(rep.failure!.message));
  const marked = await page.evaluate(() =>
    (
      globalThis as unknown as { odpsimView: { violationLines(): unknown } }
    ).odpsimView.violationLines(),
  );
  assert.deepEqual(marked, [[bugStep], [bugStep]], 'the dashed line on the lanes and the grid');

  // The cursor visits the steps with events in order; the panel lists their events and the
  // CPU entries the trace gives at that step.
  const steps = [...new Set(rep.timeline.map((e) => e.step))];
  const cpuAt = cpuEntries(token);
  await page.keyboard.press('Home');
  for (const [i, step] of steps.entries()) {
    if (i > 0) await page.keyboard.press('ArrowRight');
    assert.equal(await page.textContent('#cursor-step'), String(step));
    const events = await page.$$eval('#cursor-events li', (lis) => lis.map((l) => l.textContent));
    const expected = rep.timeline.filter((e) => e.step === step).map((e) => `${e.task}: ${e.text}`);
    assert.deepEqual(events, expected, `events at step ${step}`);
    const cpuRows = await page.$$eval('#entries tr[data-row]', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    for (const [pg, owner, state] of cpuRows)
      if (owner === 'CPU')
        assert.equal(state, cpuAt(step, pg!), `CPU entry of ${pg} at step ${step}`);
  }
  await page.keyboard.press('ArrowLeft');
  assert.equal(await page.textContent('#cursor-step'), String(steps.at(-2)));

  // Coloured cells: exactly the (page, device, step) the coherence oracle rejected.
  const m = /device (\S+) commits a translation of (mm\d+ 0x[0-9a-f]+)/.exec(rep.failure!.message);
  assert.ok(m !== null, rep.failure!.message);
  const cells = await page.evaluate(() =>
    (
      globalThis as unknown as { odpsimView: { incoherentCells(): unknown } }
    ).odpsimView.incoherentCells(),
  );
  assert.deepEqual(cells, [[m[2], m[1], bugStep]]);
  const drawn = await page.evaluate(
    () =>
      (
        globalThis as unknown as { odpsimView: { drawnIncoherent(): unknown[] } }
      ).odpsimView.drawnIncoherent().length,
  );
  assert.equal(drawn, 1);
  // The panel marks the incoherent entry at the violation's step.
  await page.keyboard.press('End');
  assert.equal(await page.$$eval('#entries tr.incoherent', (t) => t.length), 1);

  mkdirSync('test-artifacts', { recursive: true });
  await page.screenshot({ path: 'test-artifacts/web-view.png' });
  if (process.env.ODPSIM_UPDATE_SCREENSHOT === '1')
    copyFileSync('test-artifacts/web-view.png', 'docs/img/web-view.png');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the web view of a clean run colours nothing and marks no violation', async () => {
  const file = join(tmp, 'clean.html');
  const r = await odpsimAsyncWith(SRC, ['run', 'dmirror-race', '--html', file]);
  assert.equal(r.status, 0, r.stderr);
  const { page, errors } = await open(file);
  assert.equal(await page.getAttribute('#violation', 'data-step'), null);
  const cells = await page.evaluate(
    () =>
      (
        globalThis as unknown as { odpsimView: { incoherentCells(): unknown[] } }
      ).odpsimView.incoherentCells().length,
  );
  assert.equal(cells, 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('explore --html writes the web view of the minimised violation (pct seed 1, ≤ 100 runs)', async () => {
  const file = join(tmp, 'explore.html');
  const r = await odpsimAsyncWith(SRC, [
    'explore',
    'dmirror-race',
    '--mutant',
    'dmirror.no-read-retry',
    '--runs',
    '100',
    '--html',
    file,
    '--json',
  ]);
  assert.equal(r.status, 1, r.stderr);
  const rep = json<ExploreJson>(r);
  assert.equal(rep.files.html, file);
  const { page, errors } = await open(file);
  assert.equal(
    await page.getAttribute('#violation', 'data-step'),
    String(rep.failure!.timeline.at(-1)!.step),
  );
  assert.ok((await page.textContent('header'))!.includes(rep.failure!.token));
  assert.deepEqual(errors, []);
  await page.close();
});

/** The web view's test hook, as page.js exports it. */
interface ViewHook {
  rows(): [page: string, owner: string, kind: string][];
  rowLabels(): string[];
  staleRanges(): [page: string, owner: string, from: number, to: number][];
  drawnStale(): unknown[];
  incoherentCells(): unknown[];
  moveTo(step: number): void;
}
/** Calls the hook's `name` in the page. */
function hook<K extends keyof ViewHook>(
  page: Page,
  name: K,
  ...args: Parameters<ViewHook[K]>
): Promise<ReturnType<ViewHook[K]>> {
  return page.evaluate(
    ([n, a]) => {
      const v = (
        globalThis as unknown as { odpsimView: Record<string, (...x: unknown[]) => unknown> }
      ).odpsimView;
      return v[n]!(...a);
    },
    [name, args] as const,
  ) as Promise<ReturnType<ViewHook[K]>>;
}

test('TLB rows: a CPU TLB caching a page after its PTE was cleared is stale, hatched not orange, up to the violation (explore sva, random seed 6, ≤ 50 runs)', async () => {
  const file = join(tmp, 'tlb.html');
  const r = await odpsimAsyncWith(SRC, [
    'explore',
    'sva',
    '--mutant',
    'mm.mremap-flush-after-unlock',
    '--set',
    'ops=24',
    '--strategy',
    'random',
    '--seed',
    '6',
    '--runs',
    '50',
    '--html',
    file,
    '--json',
  ]);
  assert.equal(r.status, 1, r.stderr);
  const rep = json<ExploreJson>(r);
  assert.equal(rep.failure!.rule, 'stale-tlb');
  const bugStep = rep.failure!.timeline.at(-1)!.step;
  // "... the TLB of cpu4 (process) still caches mm1 0x7efffffff000 → ...; its PTE was cleared
  // at step 43, ..."
  const m =
    /the TLB of (cpu\d+ \([^)]+\)) still caches (mm\d+ 0x[0-9a-f]+) .* its PTE was cleared at step (\d+)/.exec(
      rep.failure!.message,
    );
  assert.ok(m !== null, rep.failure!.message);
  const [, tlb, pg, cleared] = m;
  assert.equal(pg, 'mm1 0x7efffffff000');
  const owner = `TLB ${tlb}`;
  const { page, errors } = await open(file);

  // The page's rows: its CPU entry first, then the TLB row, on the drawn axis too.
  const rows = await hook(page, 'rows');
  const mine = rows.filter((row) => row[0] === pg);
  assert.deepEqual(mine[0], [pg, 'CPU', 'cpu']);
  assert.ok(
    mine.some(([, o, k]) => o === owner && k === 'tlb'),
    JSON.stringify(mine),
  );
  const rank = ['cpu', 'dev', 'tlb'];
  for (let i = 1; i < rows.length; i++)
    if (rows[i - 1]![0] === rows[i]![0])
      assert.ok(
        rank.indexOf(rows[i - 1]![2]) <= rank.indexOf(rows[i]![2]),
        `rows of ${rows[i]![0]}: CPU, then devices, then TLBs`,
      );
  assert.ok((await hook(page, 'rowLabels')).includes(`${pg} ${owner}`));

  // Stale from the PTE's clear up to (through) the violation step; drawn, and not orange.
  const stale = await hook(page, 'staleRanges');
  assert.deepEqual(
    stale.filter((s) => s[0] === pg && s[1] === owner),
    [[pg, owner, Number(cleared), bugStep + 1]],
  );
  assert.equal((await hook(page, 'drawnStale')).length, stale.length);
  assert.deepEqual(await hook(page, 'incoherentCells'), []);

  // The legend explains the overlay.
  const legend = (await page.textContent('#legend-tlb'))!;
  assert.ok(legend.includes('TLB entry'), legend);
  assert.ok(
    legend.includes(
      'cached after its entry changed: legal until the flush, a bug if the frame is freed',
    ),
    legend,
  );

  // The panel marks the row stale at the violation, not before the clear.
  const staleRows = () =>
    page.$$eval('#entries tr.stale', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 2).map((td) => td.textContent)),
    );
  await page.click('#violation');
  assert.equal(await page.textContent('#cursor-step'), String(bugStep));
  assert.deepEqual(await staleRows(), [[pg, owner]]);
  assert.equal(await page.$$eval('#entries tr.incoherent', (t) => t.length), 0);
  await hook(page, 'moveTo', Number(cleared) - 1);
  assert.deepEqual(await staleRows(), []);

  mkdirSync('test-artifacts', { recursive: true });
  await page.screenshot({ path: 'test-artifacts/web-view-tlb.png' });
  assert.deepEqual(errors, []);
  await page.close();
});
