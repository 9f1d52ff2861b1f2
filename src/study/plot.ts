/**
 * Draws a study's charts (chart.ts) to SVG with Apache ECharts' server-side renderer, and puts
 * them, with the study's tables, into one standalone HTML page: what `odpsim study` writes.
 * The output is a pure function of the input (no animation, no clock, no random ids), so a
 * study re-run on the same data writes byte-identical files.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LineChart, type LineSeriesOption } from 'echarts/charts';
import {
  GridComponent,
  type GridComponentOption,
  LegendComponent,
  type LegendComponentOption,
  TitleComponent,
  type TitleComponentOption,
} from 'echarts/components';
import { type ComposeOption, init, use } from 'echarts/core';
import { SVGRenderer } from 'echarts/renderers';
import type { ChartAxis, ChartSpec } from './chart.ts';
import type { StudyTable } from './study.ts';

use([LineChart, GridComponent, LegendComponent, TitleComponent, SVGRenderer]);

type Option = ComposeOption<
  LineSeriesOption | GridComponentOption | LegendComponentOption | TitleComponentOption
>;

/** 720 × 400 fits a page column and a README at 100 %, and keeps 12 px labels legible. */
const CHART_WIDTH = 720;
const CHART_HEIGHT = 400;
/** Room above the grid for the title, and per row of legend (ECharts wraps a long legend). */
const TITLE_HEIGHT = 40;
const LEGEND_ROW_HEIGHT = 22;
/** Rough width of a legend item: 12 px text at about 7 px a character, plus the line icon. */
const LEGEND_CHAR_WIDTH = 7;
const LEGEND_ICON_WIDTH = 45;

/** Chart ids and study names become file names and HTML ids. */
const NAME = /^[a-z0-9-]+$/;

/** A study's page: its charts, and the tables and notes printed above them. */
export interface StudyPage {
  /** The study's name: the stem of the files written (`<study>.html`, `<study>-<id>.svg`). */
  readonly study: string;
  readonly title: string;
  readonly notes?: readonly string[];
  readonly tables?: readonly StudyTable[];
  readonly charts: readonly ChartSpec[];
}

/** Point shapes by series (the filled ones first). */
const SYMBOLS = [
  'circle',
  'rect',
  'triangle',
  'diamond',
  'emptyCircle',
  'emptyRect',
  'emptyTriangle',
];
/** Line dashes by series, cycling apart from the shapes. */
const DASHES = ['solid', 'dashed', 'dotted'] as const;

/**
 * The chart as a standalone SVG document: a line with point symbols per series, a legend, the
 * axis names. A null y leaves a gap. Throws on an id that is not a file stem, on no series,
 * and on a value a log axis cannot place (zero, negative) or any non-finite value.
 */
export function renderChartSvg(spec: ChartSpec): string {
  checkSpec(spec);
  const legendRows = estimateLegendRows(spec.series.map((s) => s.name));
  const option: Option = {
    animation: false,
    title: { text: spec.title, left: 'center', top: 8 },
    legend: { top: TITLE_HEIGHT, left: 'center', selectedMode: false },
    grid: {
      top: TITLE_HEIGHT + legendRows * LEGEND_ROW_HEIGHT + 16,
      left: 64,
      right: 32,
      bottom: 56,
    },
    // ECharts 6 shrinks the grid so tick labels and axis names stay inside the picture.
    xAxis: { ...axis(spec.x), nameGap: 28, ...(spec.x.log ? {} : { scale: true }) },
    yAxis: { ...axis(spec.y), nameGap: 44 },
    // Each series its own symbol and dash: series with equal values draw one over the other,
    // and only the shapes tell the reader both are there.
    series: spec.series.map((s, i) => ({
      type: 'line',
      name: s.name,
      data: s.points.map(([x, y]) => [x, y]),
      connectNulls: false,
      showSymbol: true,
      symbol: SYMBOLS[i % SYMBOLS.length]!,
      symbolSize: 7,
      lineStyle: { type: DASHES[i % DASHES.length]!, width: 2 },
    })),
  };
  const size = { width: CHART_WIDTH, height: CHART_HEIGHT };
  const chart = init(null, null, { renderer: 'svg', ssr: true, ...size });
  try {
    chart.setOption(option);
    return stableIds(chart.renderToSVGString(), `plot-${spec.id}`);
  } finally {
    chart.dispose();
  }
}

/**
 * The study's standalone HTML page: the title, the notes, the tables, and every chart's SVG
 * inline in `<figure id="chart-<id>" data-series="<number of series>">` with a caption. No
 * script and no external resource: it opens from disk, or as a CI artifact.
 */
export function studyPageHtml(page: StudyPage): string {
  checkPage(page);
  return pageHtml(page, page.charts.map(renderChartSvg));
}

/**
 * Writes `<dir>/<study>-<id>.svg` for each chart and `<dir>/<study>.html`, creating `dir` if
 * needed; returns the paths written. File-system errors propagate to the caller.
 */
export function writeStudyPlots(dir: string, page: StudyPage): { html: string; svgs: string[] } {
  checkPage(page);
  const rendered = page.charts.map(renderChartSvg);
  mkdirSync(dir, { recursive: true });
  const svgs = page.charts.map((c, i) => {
    const path = join(dir, `${page.study}-${c.id}.svg`);
    writeFileSync(path, `${rendered[i]}\n`);
    return path;
  });
  const html = join(dir, `${page.study}.html`);
  writeFileSync(html, pageHtml(page, rendered));
  return { html, svgs };
}

function axis(a: ChartAxis) {
  return { type: a.log ? 'log' : 'value', name: a.label, nameLocation: 'middle' } as const;
}

function checkSpec(spec: ChartSpec): void {
  if (!NAME.test(spec.id))
    throw new Error(`chart id ${JSON.stringify(spec.id)}: use lower case letters, digits and -`);
  if (spec.series.length === 0) throw new Error(`chart ${spec.id}: no series to draw`);
  const bad = (v: number | null, a: ChartAxis) =>
    v !== null && (!Number.isFinite(v) || (a.log === true && v <= 0));
  for (const s of spec.series)
    for (const [x, y] of s.points) {
      const [v, a, name] = bad(x, spec.x) ? [x, spec.x, 'x'] : [y, spec.y, 'y'];
      if (bad(v, a))
        throw new Error(
          `chart ${spec.id}, series ${JSON.stringify(s.name)}: ${name} = ${v} cannot be drawn` +
            (a.log === true ? ' on a log axis' : ''),
        );
    }
}

function checkPage(page: StudyPage): void {
  if (!NAME.test(page.study))
    throw new Error(`study ${JSON.stringify(page.study)}: use lower case letters, digits and -`);
  const ids = new Set<string>();
  for (const c of page.charts) {
    // Two charts with one id would write one file and two figures with one HTML id.
    if (ids.has(c.id)) throw new Error(`study ${page.study}: two charts have the id ${c.id}`);
    ids.add(c.id);
  }
  for (const t of page.tables ?? [])
    for (const r of t.rows)
      if (r.length !== t.header.length)
        throw new Error(
          `table ${JSON.stringify(t.title)}: a row has ${r.length} cells, the header ${t.header.length}`,
        );
}

/** An estimate, erring high (items do not split across rows): a gap, not an overlap. */
function estimateLegendRows(names: readonly string[]): number {
  const width = names.reduce((w, n) => w + n.length * LEGEND_CHAR_WIDTH + LEGEND_ICON_WIDTH, 0);
  return Math.max(1, Math.ceil((width * 1.2) / (CHART_WIDTH - 2 * LEGEND_ICON_WIDTH)));
}

/**
 * ZRender names the SVG's ids and classes with counters global to the process: `zr<n>-c0` (n
 * counts renderers made) and `zr<n>-cls-<k>` (k counts hover classes ever made). The same chart
 * drawn twice would differ, and two charts inlined in one page could share ids. Renames them
 * after the chart, classes numbered in order of first use; only inside tags and the stylesheet
 * (its CDATA is one `<...>` run), never in text.
 */
function stableIds(svg: string, prefix: string): string {
  const classes = new Map<string, number>();
  const rename = (_: string, cls: string | undefined) => {
    if (cls === undefined) return `${prefix}-`;
    const k = classes.get(cls) ?? classes.size;
    classes.set(cls, k);
    return `${prefix}-cls-${k}`;
  };
  return svg.replace(/<[^>]*>/g, (tag) => tag.replace(/\bzr\d+-(?:cls-(\d+)\b)?/g, rename));
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Right-aligns cells that read as a number (with an optional unit), as tables of numbers are. */
const NUMERIC = /^[-+]?(\d[\d,]*(\.\d+)?|\.\d+)(e[-+]?\d+)?\s?(%|×|[a-zµ]{1,3})?$/i;

function tableHtml(t: StudyTable): string {
  const cell = (s: string) => `<td${NUMERIC.test(s) ? ' class="num"' : ''}>${escapeHtml(s)}</td>`;
  const head = `<tr>${t.header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = t.rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('\n');
  return `<section>\n<h2>${escapeHtml(t.title)}</h2>\n<table>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>\n</section>`;
}

const CSS = `body{margin:0;background:#f7f7f8;color:#222;font:15px/1.5 system-ui,sans-serif}
main{max-width:800px;margin:0 auto;padding:24px 16px 48px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.15em;margin:28px 0 8px}
.study{color:#666;margin:0 0 16px}code{font:0.95em ui-monospace,monospace}
table{border-collapse:collapse;background:#fff;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:left}th{background:#eef0f3}td.num{text-align:right}
figure{margin:24px 0;background:#fff;border:1px solid #ddd;padding:8px}
figure svg{display:block;margin:0 auto;max-width:100%;height:auto}
figcaption{color:#555;font-size:0.9em;padding:4px 8px 0}`;

function pageHtml(page: StudyPage, svgs: readonly string[]): string {
  const notes = page.notes?.length
    ? `<ul class="notes">\n${page.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('\n')}\n</ul>\n`
    : '';
  const tables = (page.tables ?? []).map(tableHtml).join('\n');
  const figures = page.charts
    .map(
      (c, i) =>
        `<figure id="chart-${c.id}" data-series="${c.series.length}">\n${svgs[i]}\n` +
        `<figcaption>Figure ${i + 1}. ${escapeHtml(c.title)} <code>${page.study}-${c.id}.svg</code></figcaption>\n</figure>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(page.title)}</title>
<style>\n${CSS}\n</style></head>
<body><main>
<h1>${escapeHtml(page.title)}</h1>
<p class="study">odpsim study <code>${page.study}</code></p>
${notes}${tables}
${figures}
</main></body></html>
`;
}
