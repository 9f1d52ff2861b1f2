// Web view benchmark: time from opening the HTML file to the view having drawn everything, and
// the time of one cursor step, in Debian's chromium (playwright-core), for a run of about
// 100,000 trace events against a baseline measured in the same run: a 300-event counterexample.
// Run: npm run build && npm run bench:web
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'odpsim-bench-web-'));
const REPEATS = 3;
/** The budget of the large page: drawn within this, and a cursor step within a frame budget. */
const READY_BUDGET_MS = 5_000;
const STEP_BUDGET_MS = 100;
const KEY_STEPS = 50;

function odpsim(args: string[]): string {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0 && r.status !== 1) throw new Error(`odpsim ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Events in the page's model (the timeline it lists). */
function eventsIn(file: string): number {
  const html = readFileSync(file, 'utf8');
  const m = /<script type="application\/json" id="odpsim-model">([\s\S]*?)<\/script>/.exec(html);
  return (JSON.parse(m![1]!) as { events: unknown[] }).events.length;
}

const small = join(tmp, 'small.html');
const token = (
  JSON.parse(
    odpsim([
      'explore',
      'dmirror-race',
      '--mutant',
      'dmirror.no-read-retry',
      '--runs',
      '100',
      '--json',
    ]),
  ) as { failure: { token: string } }
).failure.token;
odpsim(['replay', token, '--html', small, '--timeline', 'full']);
const big = join(tmp, 'big.html');
odpsim(['run', 'default', '--set', 'rounds=14', '--html', big]);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
async function measure(file: string): Promise<{ readyMs: number; keyMs: number }> {
  const ready: number[] = [];
  const keys: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const t0 = performance.now();
    await page.goto(`file://${file}`);
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { odpsimView?: { ready: boolean } }).odpsimView?.ready === true,
      null,
      { timeout: 120_000 },
    );
    ready.push(performance.now() - t0);
    const k0 = performance.now();
    for (let k = 0; k < KEY_STEPS; k++) await page.keyboard.press('ArrowRight');
    await page.textContent('#cursor-step');
    keys.push((performance.now() - k0) / KEY_STEPS);
    await page.close();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { readyMs: median(ready), keyMs: median(keys) };
}
const base = await measure(small);
const large = await measure(big);
await browser.close();
console.log(`web view (chromium, median of ${REPEATS})`);
console.log('page                          events   ready ms   ms per cursor step');
console.log(
  `counterexample (baseline)  ${String(eventsIn(small)).padStart(9)}${base.readyMs.toFixed(0).padStart(11)}${base.keyMs.toFixed(1).padStart(21)}`,
);
console.log(
  `default rounds=14          ${String(eventsIn(big)).padStart(9)}${large.readyMs.toFixed(0).padStart(11)}${large.keyMs.toFixed(1).padStart(21)}`,
);
console.log(
  `ratio: ready ${(large.readyMs / base.readyMs).toFixed(2)}x the baseline, cursor step ${(large.keyMs / base.keyMs).toFixed(2)}x`,
);
const verdict = (ms: number, budget: number) =>
  `${ms.toFixed(0)} ms ${ms <= budget ? 'within' : 'OVER'} the ${budget} ms budget`;
console.log(
  `large page: ready ${verdict(large.readyMs, READY_BUDGET_MS)}; cursor step ${verdict(large.keyMs, STEP_BUDGET_MS)}`,
);
rmSync(tmp, { recursive: true, force: true });
