// The odpsim web view, in the browser: draws the model odpsim embedded in the page (task lanes
// and the page grid, with Apache ECharts), and moves a cursor through the steps. Plain script:
// the file is inlined into one self-contained HTML page after the ECharts library.
/* global echarts */
(() => {
  // For tests and scripts: the state of the view (filled in below).
  const view = { ready: false };
  window.odpsimView = view;
  const model = JSON.parse(document.getElementById('odpsim-model').textContent);
  // Colours, as the legend (html.ts) shows them.
  const palette = JSON.parse(document.getElementById('odpsim-palette').textContent);
  const CPU = palette.cpu;
  const DEV = palette.dev;
  const TLB = palette.tlb;
  const SPAN = palette.span;
  const MARK = { fault: 'triangle', commit: 'diamond', retry: 'circle', bug: 'pin' };
  const CPU_NAMES = ['absent', 'read-only', 'writable', 'swap', 'migration'];
  const DEV_NAMES = ['absent', 'read', 'write'];
  const TLB_NAMES = ['absent', 'read', 'write'];
  const NAMES = { cpu: CPU_NAMES, dev: DEV_NAMES, tlb: TLB_NAMES };
  const last = model.lastStep + 1;
  // Grid rows on screen at once (html.ts sizes the chart for as many); more scroll.
  const ROWS_SHOWN = 40;
  // The panel lists every entry of a small grid; of a large one, the pages the step touches.
  const PANEL_ALL_ROWS = 40;

  // The steps with an event, in order: the cursor moves among them.
  const steps = [...new Set(model.events.map((e) => e[0]))].sort((a, b) => a - b);
  const indexOfStep = new Map(steps.map((s, i) => [s, i]));
  const byStep = new Map();
  for (const e of model.events) {
    if (!byStep.has(e[0])) byStep.set(e[0], []);
    byStep.get(e[0]).push(e);
  }

  function stateAt(segs, step) {
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (segs[mid][0] <= step) lo = mid;
      else hi = mid - 1;
    }
    return segs[lo];
  }

  function segmentsOf(row, i) {
    return row.segments.map((s, k) => [s[0], (row.segments[k + 1] || [last])[0], i, s[1], s[2]]);
  }

  // Stale TLB cells: grey diagonal hatching over the cell's own colour, in a dashed outline.
  const hatch = document.createElement('canvas');
  hatch.width = 6;
  hatch.height = 6;
  {
    const c = hatch.getContext('2d');
    c.strokeStyle = palette.stale;
    c.lineWidth = 1.2;
    c.beginPath();
    for (const k of [-6, 0, 6]) {
      c.moveTo(k, 6);
      c.lineTo(k + 6, 0);
    }
    c.stroke();
  }
  const OVERLAY = {
    incoherent: { fill: palette.incoherent, stroke: '#000', lineWidth: 1 },
    stale: {
      fill: { image: hatch, repeat: 'repeat' },
      stroke: palette.stale,
      lineWidth: 1,
      lineDash: [3, 2],
    },
  };

  /**
   * An outlined rectangle over steps [from, to) of grid row `row`: an incoherent cell, or
   * (`style` OVERLAY.stale) a stale TLB cell.
   */
  function outlined(api, params, style) {
    const start = api.coord([api.value(0), api.value(2)]);
    const end = api.coord([api.value(1), api.value(2)]);
    const h = api.size([0, 1])[1] * 0.8;
    const rect = echarts.graphic.clipRectByRect(
      { x: start[0], y: start[1] - h / 2, width: Math.max(1, end[0] - start[0]), height: h },
      {
        x: params.coordSys.x,
        y: params.coordSys.y,
        width: params.coordSys.width,
        height: params.coordSys.height,
      },
    );
    if (!rect) return null;
    return {
      type: 'rect',
      shape: rect,
      style,
    };
  }

  // The lanes: one row per task.
  const laneData = { run: [], lock: [], invalidate: [] };
  for (const s of model.spans) laneData[s.kind].push([s.from, s.to, s.task, s.label]);
  // Spans and cells are thick horizontal lines of a `lines` series in large mode: one batched
  // draw per colour, so 100,000 of them render in well under a second.
  const thick = (id, name, color, width, data) => ({
    id,
    name,
    type: 'lines',
    coordinateSystem: 'cartesian2d',
    large: true,
    largeThreshold: 500,
    silent: true,
    lineStyle: { color, width, opacity: 1, cap: 'butt' },
    itemStyle: { color },
    data: data.map((d) => ({
      coords: [
        [d[0], d[2]],
        [d[1], d[2]],
      ],
    })),
  });
  const WIDTH = { run: 16, invalidate: 10, lock: 5 };
  const laneSeries = ['run', 'invalidate', 'lock'].map((kind) =>
    thick(
      `span-${kind}`,
      kind === 'run' ? 'running' : kind === 'lock' ? 'lock held' : 'invalidation',
      SPAN[kind],
      WIDTH[kind],
      laneData[kind],
    ),
  );
  const markSeries = Object.keys(MARK).map((kind) => ({
    id: `mark-${kind}`,
    name: kind === 'commit' ? 'device commit' : kind === 'fault' ? 'device fault' : kind,
    type: 'scatter',
    symbol: MARK[kind],
    symbolSize: kind === 'bug' ? 18 : 9,
    itemStyle: {
      color: kind === 'bug' ? palette.incoherent : kind === 'commit' ? DEV[2] : '#636363',
    },
    data: model.marks.filter((m) => m.kind === kind).map((m) => [m.step, m.task, m.label]),
    large: true,
  }));

  // The grid: a row per (page, owner).
  const gridData = model.rows.flatMap(segmentsOf);
  // A series per colour; absent entries are left blank.
  const cellSeries = [
    ...CPU.map((color, state) => ['cpu', state, color]),
    ...DEV.map((color, state) => ['dev', state, color]),
    ...TLB.map((color, state) => ['tlb', state, color]),
  ]
    .filter(([, state]) => state > 0)
    .map(([kind, state, color]) =>
      thick(
        `cells-${kind}-${state}`,
        kind === 'tlb' ? `TLB ${TLB_NAMES[state]}` : NAMES[kind][state],
        color,
        12,
        gridData.filter((d) => model.rows[d[2]].kind === kind && d[3] === state),
      ),
    );
  const rowLabels = model.rows.map((r) => `${r.page} ${r.owner}`);
  const bad = model.incoherent.map((c) => [c[1], c[2], c[0]]);
  const stale = model.stale.map((c) => [c[1], c[2], c[0]]);

  // Plot areas, kept here: reading them back with getOption() would copy every series.
  const LANES_GRID = { left: 120, right: 24, top: 30, bottom: 50 };
  const PAGES_GRID = { left: 260, right: 30, top: 10, bottom: 50 };
  const lanes = echarts.init(document.getElementById('lanes'), null, { renderer: 'canvas' });
  const grid = echarts.init(document.getElementById('grid'), null, { renderer: 'canvas' });
  // Ready once both charts have drawn everything (progressive series included).
  let pending = 2;
  for (const chart of [lanes, grid])
    chart.on('finished', function once() {
      chart.off('finished', once);
      pending--;
      if (pending === 0) {
        view.ready = true;
        document.body.dataset.ready = '1';
      }
    });
  const xAxis = {
    type: 'value',
    min: 0,
    max: last,
    name: 'step',
    axisLabel: { hideOverlap: true },
  };
  const zoom = [
    { id: 'x-inside', type: 'inside', xAxisIndex: 0, filterMode: 'weakFilter' },
    {
      id: 'x-slider',
      type: 'slider',
      xAxisIndex: 0,
      filterMode: 'weakFilter',
      height: 18,
      bottom: 4,
    },
  ];
  const rowZoom =
    model.rows.length > ROWS_SHOWN
      ? [
          {
            id: 'y-slider',
            type: 'slider',
            yAxisIndex: 0,
            right: 4,
            width: 14,
            startValue: 0,
            endValue: ROWS_SHOWN - 1,
            filterMode: 'weakFilter',
            showDetail: false,
          },
        ]
      : [];
  // The violation as a dashed line, drawn once; the cursor is an HTML line over the charts,
  // so moving it redraws nothing.
  const violationSeries = () => ({
    id: 'violation',
    type: 'line',
    data: [],
    silent: true,
    markLine: {
      symbol: 'none',
      animation: false,
      data:
        model.violation === null
          ? []
          : [
              {
                xAxis: model.violation.step,
                lineStyle: { color: palette.incoherent, width: 2, type: 'dashed' },
                label: { formatter: 'violation', color: palette.incoherent },
              },
            ],
    },
  });
  lanes.setOption({
    animation: false,
    tooltip: { trigger: 'item' },
    legend: { top: 0 },
    grid: LANES_GRID,
    xAxis,
    yAxis: { type: 'category', data: model.tasks, inverse: true },
    dataZoom: zoom,
    series: [...laneSeries, ...markSeries, violationSeries()],
  });
  grid.setOption({
    animation: false,
    tooltip: {
      trigger: 'item',
      formatter: (p) =>
        `${rowLabels[p.value[2]]}: ${p.seriesId === 'stale' ? 'cached after its entry changed' : 'incoherent'} at steps ${p.value[0]}–${p.value[1] - 1}`,
    },
    grid: PAGES_GRID,
    xAxis,
    yAxis: { type: 'category', data: rowLabels, inverse: true, axisLabel: { fontSize: 10 } },
    dataZoom: [...zoom, ...rowZoom],
    series: [
      ...cellSeries,
      {
        id: 'incoherent',
        type: 'custom',
        renderItem: (params, api) => outlined(api, params, OVERLAY.incoherent),
        encode: { x: [0, 1], y: 2 },
        data: bad,
      },
      {
        id: 'stale',
        type: 'custom',
        renderItem: (params, api) => outlined(api, params, OVERLAY.stale),
        encode: { x: [0, 1], y: 2 },
        data: stale,
      },
      violationSeries(),
    ],
  });
  echarts.connect([lanes, grid]);

  function describe(row, state, frame) {
    const name = NAMES[row.kind][state];
    return frame !== '' ? `${name}, pfn ${frame}` : name;
  }

  // The incoherent and the stale ranges of each row, for the panel.
  function byRow(ranges) {
    const out = new Map();
    for (const c of ranges) {
      if (!out.has(c[0])) out.set(c[0], []);
      out.get(c[0]).push(c);
    }
    return out;
  }
  const incoherentOf = byRow(model.incoherent);
  const staleOf = byRow(model.stale);
  function within(ranges, rowIndex, step) {
    return (ranges.get(rowIndex) || []).some((c) => c[1] <= step && step < c[2]);
  }

  // The cursor and its panel.
  let cursor = steps.length > 0 ? steps[0] : 0;
  const panel = document.getElementById('panel');
  const lines = [
    [lanes, LANES_GRID],
    [grid, PAGES_GRID],
  ].map(([chart, g]) => {
    const line = document.createElement('div');
    line.className = 'cursor';
    chart.getDom().appendChild(line);
    return { chart, g, line };
  });
  /** Puts the cursor line at its step on each chart (hidden outside the zoomed range). */
  function place() {
    for (const { chart, g, line } of lines) {
      const box = {
        x: g.left,
        y: g.top,
        width: chart.getWidth() - g.left - g.right,
        height: chart.getHeight() - g.top - g.bottom,
      };
      const x = chart.convertToPixel({ xAxisIndex: 0 }, cursor);
      const shown = Number.isFinite(x) && x >= box.x && x <= box.x + box.width;
      line.style.display = shown ? 'block' : 'none';
      line.style.left = `${x}px`;
      line.style.top = `${box.y}px`;
      line.style.height = `${box.height}px`;
    }
  }
  for (const chart of [lanes, grid]) chart.on('datazoom', place);
  function render() {
    place();
    const events = byStep.get(cursor) || [];
    const rows = panelRows(events)
      .map((i) => {
        const r = model.rows[i];
        const s = stateAt(r.segments, cursor);
        const mark = within(incoherentOf, i, cursor)
          ? 'incoherent'
          : within(staleOf, i, cursor)
            ? 'stale'
            : '';
        const cls = mark !== '' ? ` class="${mark}"` : '';
        const flag =
          mark === 'stale'
            ? '<span class="flag" title="cached after its entry changed: legal until the flush, a bug if the frame is freed">stale</span>'
            : '';
        return `<tr${cls} data-row="${i}"><td>${escapeHtml(r.page)}</td><td>${escapeHtml(r.owner)}</td><td class="state">${describe(r, s[1], s[2])}${flag}</td></tr>`;
      })
      .join('');
    const task = events.length > 0 ? events[0][1] : '-';
    panel.innerHTML =
      `<h2>step <span id="cursor-step">${cursor}</span> · task <span id="cursor-task">${escapeHtml(task)}</span></h2>` +
      `<ul id="cursor-events">${events.map((e) => `<li>${escapeHtml(e[1])}: ${escapeHtml(e[2])}</li>`).join('')}</ul>` +
      `<table id="entries"><tr><th>page</th><th>entry of</th><th>state</th></tr>${rows}</table>`;
  }
  /** The grid rows the panel lists at the cursor: all, or those the step touches. */
  // For a large grid, indexes built once: the rows of each page address, and the rows whose
  // entry changes at each step.
  const rowsOfAddress = new Map();
  const rowsChangingAt = new Map();
  for (const [i, r] of model.rows.entries()) {
    const address = r.page.split(' ')[1];
    if (!rowsOfAddress.has(address)) rowsOfAddress.set(address, []);
    rowsOfAddress.get(address).push(i);
    for (const s of r.segments) {
      if (!rowsChangingAt.has(s[0])) rowsChangingAt.set(s[0], []);
      rowsChangingAt.get(s[0]).push(i);
    }
  }
  function panelRows(events) {
    if (model.rows.length <= PANEL_ALL_ROWS) return model.rows.map((_, i) => i);
    const rows = new Set(rowsChangingAt.get(cursor) || []);
    for (const e of events)
      for (const address of e[2].match(/0x[0-9a-f]+/g) || [])
        for (const i of rowsOfAddress.get(address) || []) rows.add(i);
    for (const c of model.incoherent) if (c[1] <= cursor && cursor < c[2]) rows.add(c[0]);
    for (const c of model.stale) if (c[1] <= cursor && cursor < c[2]) rows.add(c[0]);
    return [...rows].sort((a, b) => a - b);
  }

  function escapeHtml(s) {
    return String(s).replace(
      /[&<>"]/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c],
    );
  }
  function moveTo(step) {
    cursor = step;
    render();
  }
  function nearest(step) {
    let best = steps[0] ?? 0;
    for (const s of steps) if (Math.abs(s - step) < Math.abs(best - step)) best = s;
    return best;
  }
  document.addEventListener('keydown', (e) => {
    const i = indexOfStep.get(cursor) ?? 0;
    if (e.key === 'ArrowRight' && i + 1 < steps.length) moveTo(steps[i + 1]);
    else if (e.key === 'ArrowLeft' && i > 0) moveTo(steps[i - 1]);
    else if (e.key === 'Home' && steps.length > 0) moveTo(steps[0]);
    else if (e.key === 'End' && steps.length > 0) moveTo(steps[steps.length - 1]);
    else return;
    e.preventDefault();
  });
  for (const chart of [lanes, grid])
    chart.getZr().on('click', (e) => {
      const [x] = chart.convertFromPixel({ gridIndex: 0 }, [e.offsetX, e.offsetY]);
      if (Number.isFinite(x)) moveTo(nearest(Math.round(x)));
    });

  const violation = document.getElementById('violation');
  if (model.violation !== null) {
    violation.textContent = `Violation at step ${model.violation.step}: ${model.violation.message}`;
    violation.dataset.step = String(model.violation.step);
    violation.addEventListener('click', () => moveTo(model.violation.step));
  }
  render();

  Object.assign(view, {
    cursor: () => cursor,
    moveTo,
    steps,
    violation: model.violation,
    incoherentCells: () =>
      model.incoherent.flatMap((c) => {
        const out = [];
        for (let s = c[1]; s < c[2]; s++)
          out.push([model.rows[c[0]].page, model.rows[c[0]].owner, s]);
        return out;
      }),
    drawnIncoherent: () => grid.getOption().series.find((s) => s.id === 'incoherent').data,
    rows: () => model.rows.map((r) => [r.page, r.owner, r.kind]),
    rowLabels: () => grid.getOption().yAxis[0].data,
    staleRanges: () =>
      model.stale.map((c) => [model.rows[c[0]].page, model.rows[c[0]].owner, c[1], c[2]]),
    drawnStale: () => grid.getOption().series.find((s) => s.id === 'stale').data,
    violationLines: () =>
      [lanes, grid].map((c) =>
        c
          .getOption()
          .series.find((s) => s.id === 'violation')
          .markLine.data.map((d) => d.xAxis),
      ),
  });
})();
