// The study plots (src/study/plot.ts) as text: charts render deterministically, on log axes too,
// a null y breaks the line, the page escapes what it prints, bad input is refused, and
// writeStudyPlots writes the files it names. What the browser draws is test/web/study-page.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ChartSpec } from '../../src/study/chart.ts';
import { renderChartSvg, studyPageHtml, writeStudyPlots } from '../../src/study/plot.ts';

const chart = (over: Partial<ChartSpec> = {}): ChartSpec => ({
  id: 'faults',
  title: 'Faults by pages',
  x: { label: 'pages (count)' },
  y: { label: 'faults (per run)' },
  series: [
    {
      name: 'pct',
      points: [
        [1, 10],
        [2, 20],
        [3, 30],
        [4, 40],
      ],
    },
  ],
  ...over,
});

/** The `d` of each series' line: ECharts puts each line alone in a clipped group. */
function lineData(svg: string): string[] {
  return [...svg.matchAll(/<g clip-path="[^"]*">\n<path d="([^"]*)"/g)].map((m) => m[1]!);
}

test('the same chart renders to the same bytes, even after other charts were drawn', () => {
  const first = renderChartSvg(chart());
  // ZRender numbers ids and classes per process: draw something else in between.
  renderChartSvg(chart({ id: 'other', y: { label: 'time (ms)', log: true } }));
  const second = renderChartSvg(chart());
  assert.equal(second, first);
  assert.match(first, /^<svg [^>]*width="720" height="400"/);
  assert.doesNotMatch(first, /zr\d+-/, 'no process-global ids left');
});

test('a log x axis labels its decades', () => {
  const svg = renderChartSvg(
    chart({
      x: { label: 'pages (count)', log: true },
      series: [
        {
          name: 'pct',
          points: [
            [1, 1],
            [10, 2],
            [100, 3],
            [1000, 4],
          ],
        },
      ],
    }),
  );
  const labels = [...svg.matchAll(/>([\d,]+)<\/text>/g)].map((m) => m[1]);
  for (const decade of ['1', '10', '100', '1,000']) assert.ok(labels.includes(decade), decade);
  assert.equal(lineData(svg).length, 1);
});

test('a null y breaks the line: two segments instead of four', () => {
  const points = (gap: number | null) =>
    [
      [1, 1],
      [2, 2],
      [3, gap],
      [4, 4],
      [5, 5],
    ] as const;
  const segments = (y: number | null) =>
    lineData(renderChartSvg(chart({ series: [{ name: 'pct', points: points(y) }] })))[0]!.match(
      /L/g,
    )?.length;
  assert.equal(segments(3), 4);
  assert.equal(segments(null), 2, 'the segments either side of the missing point are gone');
});

test('the page escapes every text it prints and names each figure', () => {
  const html = studyPageHtml({
    study: 'sample',
    title: 'Faults & <friends>',
    notes: ['a "note" <b>'],
    tables: [
      { title: 'Runs', header: ['pages', 'what'], rows: [['4', '<script>alert(1)</script>']] },
    ],
    charts: [chart(), chart({ id: 'second', title: '<i>second</i>' })],
  });
  assert.doesNotMatch(html, /<script/i, 'no script, not even from a cell');
  assert.ok(html.includes('&#60;script&#62;alert(1)&#60;/script&#62;'));
  assert.ok(html.includes('<title>Faults &#38; &#60;friends&#62;</title>'));
  assert.ok(html.includes('a &#34;note&#34; &#60;b&#62;'));
  assert.doesNotMatch(html, /<i>|<b>/);
  assert.match(html, /<figure id="chart-faults" data-series="1">\n<svg /);
  assert.match(html, /<figure id="chart-second" data-series="1">/);
  assert.equal(html.match(/<figcaption>/g)?.length, 2);
  assert.doesNotMatch(html, /\b(src|href)=/, 'nothing loaded from elsewhere');
  // Two charts inlined in one page must not share clip-path ids or hover classes.
  assert.ok(html.includes('id="plot-faults-c0"') && html.includes('id="plot-second-c0"'));
});

test('bad ids, empty series, unplottable values, ragged tables and duplicate ids are refused', () => {
  assert.throws(() => renderChartSvg(chart({ id: 'Bad Id' })), /chart id "Bad Id"/);
  assert.throws(() => renderChartSvg(chart({ id: '../x' })), /chart id/);
  assert.throws(() => renderChartSvg(chart({ series: [] })), /chart faults: no series/);
  assert.throws(
    () =>
      renderChartSvg(
        chart({ y: { label: 'ms', log: true }, series: [{ name: 'z', points: [[1, 0]] }] }),
      ),
    /y = 0 cannot be drawn on a log axis/,
  );
  assert.throws(
    () => renderChartSvg(chart({ series: [{ name: 'n', points: [[Number.NaN, 1]] }] })),
    /x = NaN cannot be drawn/,
  );
  const page = { study: 'sample', title: 't', charts: [chart()] };
  assert.throws(() => studyPageHtml({ ...page, study: 'Sample' }), /study "Sample"/);
  assert.throws(() => studyPageHtml({ ...page, charts: [chart(), chart()] }), /two charts/);
  assert.throws(
    () => studyPageHtml({ ...page, tables: [{ title: 'r', header: ['a', 'b'], rows: [['1']] }] }),
    /a row has 1 cells, the header 2/,
  );
});

test('writeStudyPlots writes <study>-<id>.svg per chart and <study>.html, creating the directory', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'odpsim-plot-'));
  try {
    const dir = join(tmp, 'deep', 'plots');
    const page = {
      study: 'sample',
      title: 'Sample',
      charts: [chart(), chart({ id: 'second' })],
    };
    const out = writeStudyPlots(dir, page);
    assert.deepEqual(out, {
      html: join(dir, 'sample.html'),
      svgs: [join(dir, 'sample-faults.svg'), join(dir, 'sample-second.svg')],
    });
    assert.equal(readFileSync(out.svgs[0]!, 'utf8'), `${renderChartSvg(chart())}\n`);
    assert.equal(readFileSync(out.html, 'utf8'), studyPageHtml(page));
    // A file where the directory should be: the error reaches the caller.
    const blocked = join(tmp, 'file');
    writeFileSync(blocked, '');
    assert.throws(() => writeStudyPlots(join(blocked, 'plots'), page), { code: 'ENOTDIR' });
    assert.ok(!existsSync(join(tmp, 'sample.html')));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
