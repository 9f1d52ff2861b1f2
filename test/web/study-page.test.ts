// A study page (src/study/plot.ts) in a real browser (Debian's chromium, driven by
// playwright-core): the page writeStudyPlots writes for a sample of two charts — three series of
// five points over a log x axis, and one series with a failed run (a null y) — opens without an
// error, and each figure shows what its chart holds: one line per series, one symbol per point
// that has a value, a line broken at the gap, the legend, axis names and title as visible text.
// The marks are read from the DOM through study-harness.ts, not matched in the SVG source.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChartSpec } from '../../src/study/chart.ts';
import { writeStudyPlots } from '../../src/study/plot.ts';
import { useChromium } from './chromium.ts';
import { chartMarks, openStudyPage } from './study-harness.ts';

const web = useChromium('study-page');
const tmp = web.tmp;

const PAGES = [4, 16, 64, 256, 1024];
const scaling: ChartSpec = {
  id: 'faults-by-pages',
  title: 'Device faults by mirrored pages',
  x: { label: 'pages (count)', log: true },
  y: { label: 'faults (per run)' },
  series: ['pct', 'random', 'dfs'].map((name, k) => ({
    name,
    points: PAGES.map((p) => [p, p * (k + 1)] as const),
  })),
};
const withGap: ChartSpec = {
  id: 'time-by-threads',
  title: 'Virtual time by threads',
  x: { label: 'threads' },
  y: { label: 'virtual time (µs)' },
  series: [
    {
      name: 'kvm-mirror',
      points: [
        [1, 30],
        [2, 50],
        [3, null],
        [4, 90],
        [5, 120],
      ],
    },
  ],
};

test('a study page in chromium: every chart draws its lines, points, gap, legend and axis names', async () => {
  const { html } = writeStudyPlots(tmp, {
    study: 'sample',
    title: 'Sample study',
    notes: ['Each point is one run.'],
    tables: [{ title: 'Runs', header: ['pages', 'faults'], rows: [['4', '<script>x</script>']] }],
    charts: [scaling, withGap],
  });
  const { page, errors } = await openStudyPage(web.browser(), html);

  assert.equal(await page.locator('h1').textContent(), 'Sample study');
  assert.equal(await page.locator('td').nth(1).textContent(), '<script>x</script>', 'as text');
  assert.equal(await page.locator('script').count(), 0);
  assert.equal(await page.locator('figure').count(), 2);

  for (const spec of [scaling, withGap]) {
    const m = await chartMarks(page, spec.id);
    const values = spec.series.map((s) => s.points.filter(([, y]) => y !== null).length);
    assert.ok(m.width > 0 && m.height > 0, `${spec.id}: the svg has a size`);
    assert.equal(m.series, spec.series.length, `${spec.id}: data-series`);
    assert.equal(m.lines, spec.series.length, `${spec.id}: one line per series`);
    assert.deepEqual(m.symbolsPerSeries, values, `${spec.id}: one symbol per value`);
    assert.equal(
      m.symbols,
      values.reduce((a, b) => a + b, 0),
    );
    for (const text of [spec.title, spec.x.label, spec.y.label, ...spec.series.map((s) => s.name)])
      assert.ok(
        m.texts.includes(text),
        `${spec.id}: "${text}" is visible in ${JSON.stringify(m.texts)}`,
      );
  }

  // Three lines of five points, four segments each; log ticks at the decades 10, 100, 1,000.
  const scaled = await chartMarks(page, scaling.id);
  assert.equal(scaled.segments, 12);
  for (const tick of ['10', '100', '1,000']) assert.ok(scaled.texts.includes(tick), tick);
  // The failed run at 3 threads removes the segments 2–3 and 3–4: two of four remain.
  assert.equal((await chartMarks(page, withGap.id)).segments, 2);

  await assert.rejects(chartMarks(page, 'absent'), 'a missing chart is an error, not zeros');
  assert.deepEqual(errors, []);
  await page.close();
});
