// Regenerates the figures of docs/studies.md: the npf study's fault-latency chart and the
// first-touch study's first-WRITE chart, each study run at its defaults (seed 1, the default
// cost table), drawn with the renderer `odpsim study` uses. Rerun after changing the cost table
// or either study, and commit the SVGs.
// Usage: node --import tsx scripts/study-figures.ts
import { writeFileSync } from 'node:fs';
import { studyFirstTouch } from '../src/study/first-touch.ts';
import { studyNpf } from '../src/study/npf.ts';
import { renderChartSvg } from '../src/study/plot.ts';
import type { StudyResult } from '../src/study/study.ts';

const FIGURES: readonly { run: () => StudyResult; chart: string }[] = [
  { run: () => studyNpf({}), chart: 'fault-latency' },
  { run: () => studyFirstTouch({}), chart: 'first-write' },
];

for (const { run, chart } of FIGURES) {
  const result = run();
  const spec = result.charts.find((c) => c.id === chart);
  if (spec === undefined) throw new Error(`study ${result.study} has no chart ${chart}`);
  const file = new URL(`../docs/img/${result.study}-${chart}.svg`, import.meta.url);
  writeFileSync(file, `${renderChartSvg(spec)}\n`);
  console.log(`wrote docs/img/${result.study}-${chart}.svg`);
}
