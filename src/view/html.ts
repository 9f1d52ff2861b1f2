// One self-contained HTML file for a run: the model as JSON, Apache ECharts and the page's
// script inlined, so it opens from disk with no network.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CPU_STATES, DEV_STATES, type ViewModel } from './model.ts';

const require = createRequire(import.meta.url);

/** Grid rows on screen at once; more scroll with the grid's vertical slider (page.js). */
export const GRID_ROWS_SHOWN = 40;

/** ECharts' browser bundle, from the installed package. */
function echartsBundle(): string {
  return readFileSync(require.resolve('echarts/dist/echarts.min.js'), 'utf8');
}

function asset(name: string): string {
  return readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** JSON safe inside a script element (no `</script>` can end it early). */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

/** The colours of the states, spans and incoherent cells (the page script reads them too). */
const PALETTE = {
  cpu: ['#eeeeee', '#9ecae1', '#3182bd', '#bcbddc', '#fdd0a2'],
  dev: ['#eeeeee', '#a1d99b', '#31a354'],
  span: { run: '#d9d9d9', lock: '#fdae6b', invalidate: '#de2d26' },
  incoherent: '#e6550d',
} as const;

/** The legend: what each colour and mark means. */
function legend(): string {
  const { cpu, dev } = PALETTE;
  const swatch = (c: string, label: string) =>
    `<span class="swatch" style="background:${c}"></span>${escapeHtml(label)}`;
  return [
    `<div><b>CPU entry</b> ${CPU_STATES.map((s, i) => swatch(cpu[i]!, s)).join(' ')}</div>`,
    `<div><b>device translation</b> ${DEV_STATES.map((s, i) => swatch(dev[i]!, s)).join(' ')} ${swatch(PALETTE.incoherent, 'disagrees with the CPU entry')}</div>`,
    '<div><b>lanes</b> grey: running; red: an invalidation (range start to end); orange: a lock held; ◆ device commit; ▲ device fault; ● retry; pin: the violation</div>',
    '<div><b>keys</b> ← → move between steps with events, Home/End; click a chart to move there; wheel or drag to zoom and pan</div>',
  ].join('');
}

/** The page for `model`. */
export function renderHtml(model: ViewModel): string {
  const header = model.meta.lines.map((l) => `<div>${escapeHtml(l)}</div>`).join('');
  const laneHeight = 90 + 26 * model.tasks.length;
  const gridHeight = 70 + Math.max(1, Math.min(model.rows.length, GRID_ROWS_SHOWN)) * 16;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(model.meta.title)}</title>
<style>${asset('page.css')}</style>
</head>
<body>
<header><h1>${escapeHtml(model.meta.title)}</h1>${header}</header>
<div id="violation" class="violation"></div>
<section class="legend">${legend()}</section>
<main>
<div class="charts">
<div id="lanes" style="height:${laneHeight}px"></div>
<div id="grid" style="height:${gridHeight}px"></div>
</div>
<aside id="panel"></aside>
</main>
<script type="application/json" id="odpsim-model">${scriptJson(model)}</script>
<script type="application/json" id="odpsim-palette">${scriptJson(PALETTE)}</script>
<script>${echartsBundle()}</script>
<script>${asset('page.js')}</script>
</body>
</html>
`;
}
