// One self-contained HTML file for a run: the model as JSON, Apache ECharts and the page's
// script inlined, so it opens from disk with no network.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CPU_STATES, DEV_STATES, TLB_STATES, type ViewModel } from './model.ts';

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

/**
 * The colours of the states, spans, incoherent cells and stale TLB cells (the page script
 * reads them too). TLB rows are tan and brown, apart from the devices' greens; a stale TLB
 * cell is hatched and outlined in a neutral grey, not orange: a stale cached translation is
 * legal until its flush.
 */
const PALETTE = {
  cpu: ['#eeeeee', '#9ecae1', '#3182bd', '#bcbddc', '#fdd0a2'],
  dev: ['#eeeeee', '#a1d99b', '#31a354'],
  tlb: ['#eeeeee', '#dfc27d', '#a6611a'],
  span: { run: '#d9d9d9', lock: '#fdae6b', invalidate: '#de2d26' },
  incoherent: '#e6550d',
  stale: '#404040',
} as const;

/** The legend: what each colour and mark means. */
function legend(): string {
  const { cpu, dev, tlb } = PALETTE;
  const swatch = (c: string, label: string) =>
    `<span class="swatch" style="background:${c}"></span>${escapeHtml(label)}`;
  const hatch = `repeating-linear-gradient(135deg, #ffffff 0 3px, ${PALETTE.stale} 3px 4px)`;
  const stale = `<span class="swatch stale" style="border-color:${PALETTE.stale};background:${hatch}"></span>${escapeHtml('cached after its entry changed: legal until the flush, a bug if the frame is freed')}`;
  return [
    `<div><b>CPU entry</b> ${CPU_STATES.map((s, i) => swatch(cpu[i]!, s)).join(' ')}</div>`,
    `<div><b>device translation</b> ${DEV_STATES.map((s, i) => swatch(dev[i]!, s)).join(' ')} ${swatch(PALETTE.incoherent, 'disagrees with the CPU entry')}</div>`,
    `<div id="legend-tlb"><b>TLB entry</b> (a CPU's TLB, a device's IOTLB) ${TLB_STATES.map((s, i) => swatch(tlb[i]!, s)).join(' ')} ${stale}</div>`,
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
