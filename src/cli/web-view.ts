// `--html <file>`: the web view of a recorded run (src/view/), headed with what ran.
import type { TraceRecorder } from '../kernel/trace-export.ts';
import { renderHtml } from '../view/html.ts';
import { buildViewModel } from '../view/model.ts';
import { type RecordingPaths, type Written, writeOutputs } from './outputs.ts';
import type { Setup } from './setup.ts';
import { buildTimeline } from './timeline.ts';

/** The HTML page of a run of `s`; `how` says how it ran, `token` replays it. */
export function webView(rec: TraceRecorder, s: Setup, how: string, token: string | null): string {
  const params = Object.entries(s.spec.params).map(([k, v]) => `${k}=${v}`);
  const lines = [
    `scenario  ${s.spec.scenario.name}: ${s.spec.scenario.description}`,
    `params    ${params.length > 0 ? params.join(' ') : '(none)'}`,
    `mutants   ${s.mutants.length > 0 ? s.mutants.join(', ') : 'none (the correct protocol)'}`,
    `run       ${how}`,
  ];
  if (token !== null) lines.push(`token     ${token}`);
  return renderHtml(
    buildViewModel(rec, buildTimeline(rec, 'full'), {
      title: `odpsim: ${s.spec.scenario.name}`,
      lines,
    }),
  );
}

/** Writes a recorded run's `--trace`, `--log` and `--html` files (those asked for). */
export function writeRecording(
  rec: TraceRecorder,
  o: RecordingPaths,
  s: Setup,
  how: string,
  token: string | null,
): Written {
  return writeOutputs([
    { path: o.trace, data: () => rec.toChromeTrace() },
    { path: o.log, data: () => `${rec.toText()}\n` },
    { path: o.html, data: () => webView(rec, s, how, token) },
  ]);
}
