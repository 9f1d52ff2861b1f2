// Reads a study page's charts (src/study/plot.ts) back from the DOM of a real browser, so tests
// check what was drawn rather than the SVG source. The selectors follow ECharts 6's SSR output:
// each line series is one <path> alone in a <g clip-path> (present even when it draws nothing),
// and each point symbol is a <path ecmeta_ssr_type="chart" ecmeta_series_index="<i>">.
import type { Browser, Page } from 'playwright-core';

/** What one chart of a study page drew, as the browser laid it out. */
export interface ChartMarks {
  /** The figure's `data-series`: how many series the chart was given. */
  readonly series: number;
  /** Line paths, one per series (a series with no two consecutive points draws an empty one). */
  readonly lines: number;
  /** Straight segments over all lines: a null y removes the one or two segments touching it. */
  readonly segments: number;
  /** Point symbols, one per non-null point. */
  readonly symbols: number;
  /** Point symbols of each series, by series index. */
  readonly symbolsPerSeries: readonly number[];
  /** The visible texts of the chart (title, legend, axis names, tick labels), in order. */
  readonly texts: readonly string[];
  /** The size of the chart's <svg> on the page, in CSS pixels. */
  readonly width: number;
  readonly height: number;
}

/**
 * The marks of the chart in `<figure id="chart-<chartId>">`; throws when the page has no such
 * figure or it holds no <svg>.
 */
export async function chartMarks(page: Page, chartId: string): Promise<ChartMarks> {
  // The callback runs in the page: no helper functions from here (the test runner's transpiler
  // may wrap named functions with its own helpers, undefined there), DOM objects only.
  return page.$eval(`figure#chart-${chartId}`, (figure) => {
    const svg = figure.querySelector('svg');
    if (!svg) throw new Error(`figure ${figure.id} holds no <svg>`);
    const box = svg.getBoundingClientRect();
    const lines = [...svg.querySelectorAll('g[clip-path] > path:not([ecmeta_ssr_type])')];
    const symbols = [...svg.querySelectorAll('path[ecmeta_ssr_type="chart"]')];
    const perSeries: number[] = [];
    for (const s of symbols) {
      const i = Number(s.getAttribute('ecmeta_series_index'));
      perSeries[i] = (perSeries[i] ?? 0) + 1;
    }
    const view = figure.ownerDocument.defaultView;
    const texts: string[] = [];
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      const style = view.getComputedStyle(t);
      if (r.width > 0 && r.height > 0 && style.visibility !== 'hidden' && style.display !== 'none')
        texts.push(t.textContent ?? '');
    }
    return {
      series: Number(figure.getAttribute('data-series')),
      lines: lines.length,
      // The renderer writes a polyline as M x y L x y …, a gap as a new M: count the L's.
      segments: lines.reduce((n, l) => n + (l.getAttribute('d')?.match(/L/g)?.length ?? 0), 0),
      symbols: symbols.length,
      // Every series, those without a symbol too (the sparse array stops at the last one drawn).
      symbolsPerSeries: Array.from(
        { length: Number(figure.getAttribute('data-series')) },
        (_, i) => perSeries[i] ?? 0,
      ),
      texts,
      width: box.width,
      height: box.height,
    };
  });
}

/** Opens a study page from disk, collecting page errors and console errors into `errors`. */
export async function openStudyPage(
  browser: Browser,
  file: string,
): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`file://${file}`);
  return { page, errors };
}
