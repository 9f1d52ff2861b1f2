// The pages of the five real studies in a real browser (Debian's chromium, driven by
// playwright-core): each study is run through its library function with small parameters, its
// plots are written with writeStudyPlots into a temporary directory, and its HTML page is
// opened. For every chart of the result, what the browser drew must match the data: one line
// per series, one symbol per non-null point and at that point (no symbol where a run failed),
// symbols placed in the order of their values on both axes, the title, axis names and every
// series name (the legend) visible, every table of the result on the page, no page error.
// Then one check per study ties the picture to its numbers.
//
// Parameters (seed 1, the default costs):
//   npf          scale 1024 (an 8 MiB machine for P7/P8); 1,000 one-page faults regardless
//   first-touch  sizes 4 KiB, 64 KiB
//   rnr          min_rnr_timer 1 (10 µs) and 0 (655.36 ms) × rnr_retry 0 and 7
//   overcommit   pressures 0.5 and 2 (of 8 MiB of RAM)
//   designs      1 and 10 MRs
// The five studies take about 2.5 s together, the browser about as much again.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import type { ChartSpec } from '../../src/study/chart.ts';
import type { DesignRow } from '../../src/study/designs.ts';
import { studyDesigns } from '../../src/study/designs-study.ts';
import { type FirstTouchCell, studyFirstTouch } from '../../src/study/first-touch.ts';
import { type NpfData, studyNpf } from '../../src/study/npf.ts';
import type { OvercommitRun } from '../../src/study/overcommit.ts';
import { studyOvercommit } from '../../src/study/overcommit.ts';
import { writeStudyPlots } from '../../src/study/plot.ts';
import { type RnrCell, studyRnr } from '../../src/study/rnr.ts';
import type { StudyResult } from '../../src/study/study.ts';
import { useChromium } from './chromium.ts';
import { chartMarks, openStudyPage } from './study-harness.ts';

const web = useChromium('study-pages');
const tmp = web.tmp;

/** A point symbol as laid out: its series and data index, and its centre in CSS pixels. */
interface PointMark {
  readonly series: number;
  readonly index: number;
  readonly x: number;
  readonly y: number;
}

/** The point symbols of a chart with the data point each stands for (ECharts' ecmeta). */
async function symbols(page: Page, chartId: string): Promise<PointMark[]> {
  // Runs in the page: inline arrow functions only (see study-harness.ts).
  return page.$eval(`figure#chart-${chartId}`, (figure) =>
    [...figure.querySelectorAll('svg path[ecmeta_ssr_type="chart"]')].map((s) => {
      // A symbol's shape is drawn around its own origin (a triangle's box is not centred on
      // the point): the origin on screen is the data point.
      const m = (s as unknown as { getScreenCTM(): { e: number; f: number } }).getScreenCTM();
      return {
        series: Number(s.getAttribute('ecmeta_series_index')),
        index: Number(s.getAttribute('ecmeta_data_index')),
        x: m.e,
        y: m.f,
      };
    }),
  );
}

/** The symbol of point `index` of series `series`; fails when it was not drawn. */
function at(syms: readonly PointMark[], series: number, index: number): PointMark {
  const s = syms.find((m) => m.series === series && m.index === index);
  assert.ok(s, `a symbol for point ${index} of series ${series}`);
  return s;
}

/** Rounding of the renderer's coordinates (4 decimals) and of the layout, in px. */
const PX = 0.01;

/**
 * Symbols sorted by a value sit in the same order on screen: x grows rightwards, y upwards (a
 * smaller screen y); equal values share a position.
 */
function assertMonotone(
  id: string,
  axis: 'x' | 'y',
  placed: readonly { v: number; px: number }[],
): void {
  const sorted = [...placed].sort((a, b) => a.v - b.v);
  const dir = axis === 'x' ? 1 : -1;
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    const step = (b.px - a.px) * dir;
    if (a.v === b.v) assert.ok(Math.abs(step) <= PX, `${id}: ${axis} = ${a.v} drawn at two places`);
    else assert.ok(step >= -PX, `${id}: ${axis} = ${b.v} drawn before ${axis} = ${a.v}`);
  }
}

/** Opens the study's page and checks every chart against its spec; returns the open page. */
async function checkStudyPage(result: StudyResult): Promise<Page> {
  const { html, svgs } = writeStudyPlots(join(tmp, result.study), result);
  assert.equal(svgs.length, result.charts.length, 'one SVG file per chart');
  const { page, errors } = await openStudyPage(web.browser(), html);
  assert.equal(await page.locator('h1').textContent(), result.title);
  assert.deepEqual(
    await page.locator('h2').allTextContents(),
    result.tables.map((t) => t.title),
    'every table, in order',
  );
  assert.equal(await page.locator('figure').count(), result.charts.length);
  for (const spec of result.charts) await checkChart(page, spec);
  assert.deepEqual(errors, [], 'no page or console error');
  return page;
}

async function checkChart(page: Page, spec: ChartSpec): Promise<void> {
  const id = spec.id;
  const m = await chartMarks(page, spec.id);
  const n = spec.series.length;
  const values = spec.series.map((s) => s.points.filter(([, y]) => y !== null).length);
  assert.ok(m.width > 0 && m.height > 0, `${id}: the svg has a size`);
  assert.equal(m.series, n, `${id}: data-series`);
  assert.equal(m.lines, n, `${id}: one line per series`);
  // The harness's array stops at the last series with a symbol: pad it to every series.
  const perSeries = Array.from({ length: n }, (_, i) => m.symbolsPerSeries[i] ?? 0);
  assert.deepEqual(perSeries, values, `${id}: symbols per series = its non-null points`);
  assert.equal(
    m.symbols,
    values.reduce((a, b) => a + b, 0),
    `${id}: symbols`,
  );
  for (const text of [spec.title, spec.x.label, spec.y.label, ...spec.series.map((s) => s.name)])
    assert.ok(m.texts.includes(text), `${id}: "${text}" is visible in ${JSON.stringify(m.texts)}`);

  // Each symbol stands for a non-null point, each non-null point has one, and they are laid
  // out in the order of the values.
  const syms = await symbols(page, spec.id);
  const drawn = syms.map((s) => `${s.series}:${s.index}`).sort();
  const expected = spec.series
    .flatMap((s, i) => s.points.map(([, y], j) => (y === null ? null : `${i}:${j}`)))
    .filter((k): k is string => k !== null)
    .sort();
  assert.deepEqual(drawn, expected, `${id}: a symbol at each non-null point, none elsewhere`);
  const point = (s: PointMark) => spec.series[s.series]!.points[s.index]!;
  assertMonotone(
    id,
    'x',
    syms.map((s) => ({ v: point(s)[0], px: s.x })),
  );
  assertMonotone(
    id,
    'y',
    syms.map((s) => ({ v: point(s)[1]!, px: s.y })),
  );
}

/** The chart `id` of a result, and the index of its series called `name`. */
function chart(result: StudyResult, id: string): ChartSpec {
  const c = result.charts.find((x) => x.id === id);
  assert.ok(c, `chart ${id}`);
  return c;
}
function seriesIndex(spec: ChartSpec, name: string): number {
  const i = spec.series.findIndex((s) => s.name === name);
  assert.ok(i >= 0, `${spec.id}: a series ${name}`);
  return i;
}

test('npf (scale 1024): the model series draws one symbol per percentile of the faults measured, at their values', async () => {
  const result = studyNpf({ scale: 1024 });
  const data = result.data as NpfData;
  const page = await checkStudyPage(result);
  const spec = chart(result, 'fault-latency');
  const model = seriesIndex(spec, 'model');
  const syms = (await symbols(page, spec.id)).filter((s) => s.series === model);
  assert.equal(syms.length, 100);
  // The 50th percentile's symbol is the P5 row's p50: the picture and the table agree.
  const p50 = Math.round(spec.series[model]!.points[49]![1]!);
  const row = result.tables[0]!.rows.find((r) => r[0]!.startsWith('P5'))!;
  assert.equal(Number(row[2]!.split('/')[0]), p50, row.join(' | '));
  assert.equal(data.faults.onePage.length, 1000);
  await page.close();
});

test('first-touch (4 KiB, 64 KiB): ODP over pinned on the first WRITE, as far as the data says', async () => {
  const sizes = [4096, 65536];
  const result = studyFirstTouch({ sizes });
  const cells = (result.data as { cells: FirstTouchCell[] }).cells;
  const page = await checkStudyPage(result);
  const spec = chart(result, 'first-write');
  const syms = await symbols(page, spec.id);
  const [pinned, odp] = [seriesIndex(spec, 'pinned'), seriesIndex(spec, 'ODP')];
  // On a log axis the gap between ODP and pinned is proportional to log(ODP / pinned).
  const gaps = sizes.map((size, i) => {
    const ns = (config: string) => cells.find((c) => c.size === size && c.config === config)!;
    const ratio = ns('odp').firstNs / ns('pinned').firstNs;
    const px = at(syms, pinned, i).y - at(syms, odp, i).y;
    assert.ok(ratio > 1 && px > 0, `${size} B: the ODP symbol is above the pinned one`);
    return { ratio, px };
  });
  const [a, b] = gaps as [(typeof gaps)[0], (typeof gaps)[0]];
  const drawn = a.px / b.px;
  const measured = Math.log(a.ratio) / Math.log(b.ratio);
  assert.ok(
    Math.abs(drawn / measured - 1) < 0.01,
    `gap ratio ${drawn.toFixed(3)} drawn, ${measured.toFixed(3)} measured`,
  );
  await page.close();
});

test('rnr (timers 1, 0 × retries 0, 7): no symbol where the WRITE errored', async () => {
  const result = studyRnr({ timers: [1, 0], retries: [0, 7] });
  const cells = (result.data as { cells: RnrCell[] }).cells;
  const page = await checkStudyPage(result);
  const spec = chart(result, 'latency');
  const syms = await symbols(page, spec.id);
  for (const retry of [0, 7]) {
    const i = seriesIndex(spec, retry === 7 ? 'rnr_retry 7 (for ever)' : `rnr_retry ${retry}`);
    const ok = cells.filter((c) => c.retry === retry && c.status === 'SUCCESS');
    assert.equal(syms.filter((s) => s.series === i).length, ok.length, `rnr_retry ${retry}`);
  }
  assert.ok(
    cells.filter((c) => c.retry === 0).every((c) => c.status === 'RNR_RETRY_EXC_ERR'),
    'rnr_retry 0 errors at the first NAK',
  );
  const marks = await chartMarks(page, spec.id);
  assert.equal(marks.symbolsPerSeries[seriesIndex(spec, 'rnr_retry 0')] ?? 0, 0);
  await page.close();
});

test('overcommit (0.5, 2 × RAM): pinned draws nothing where ibv_reg_mr failed', async () => {
  const result = studyOvercommit({ pressures: [0.5, 2] });
  const runs = (result.data as { runs: OvercommitRun[] }).runs;
  const page = await checkStudyPage(result);
  const spec = chart(result, 'throughput');
  const pinned = seriesIndex(spec, 'pinned');
  const drawn = (await symbols(page, spec.id))
    .filter((s) => s.series === pinned)
    .map((s) => spec.series[pinned]!.points[s.index]![0]);
  const registered = runs
    .filter((r) => r.kind === 'pinned' && r.registration === 'registered')
    .map((r) => r.pressure);
  assert.deepEqual(drawn, registered);
  assert.deepEqual(registered, [0.5], 'pinning twice the RAM fails');
  assert.equal(runs.find((r) => r.kind === 'pinned' && r.pressure === 2)!.registration, 'ENOMEM');
  await page.close();
});

test('designs (1, 10 MRs): the design that examined the most entries is drawn highest', async () => {
  const mrs = [1, 10];
  const result = studyDesigns({ mrs });
  const rows = (result.data as { rows: DesignRow[] }).rows;
  const page = await checkStudyPage(result);
  const spec = chart(result, 'entries-examined');
  const syms = await symbols(page, spec.id);
  const at10 = rows.filter((r) => r.mrs === 10);
  const most = at10.reduce((a, b) => (b.entriesExamined > a.entriesExamined ? b : a));
  assert.equal(most.design, 'list', 'the list walks every MR');
  const top = syms.filter((s) => s.index === mrs.indexOf(10)).reduce((a, b) => (b.y < a.y ? b : a));
  assert.equal(spec.series[top.series]!.name, '2014 with a list');
  await page.close();
});
