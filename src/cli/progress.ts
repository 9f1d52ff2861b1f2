// Progress on stderr: a bar with rate and ETA on a terminal, a line every few seconds otherwise
// (CI logs, pipes), and a status line for one long run.
import cliProgress from 'cli-progress';
import type { Io } from './io.ts';
import { formatDuration, num } from './report.ts';

/** Explorations of fewer runs finish too fast for a bar to help. */
const MIN_RUNS = 200;
/** Without a terminal, one line this often. */
const LINE_EVERY_MS = 5_000;
/** A single run first reports after this long (short runs stay quiet). */
const RUN_QUIET_MS = 2_000;

/** A progress sink: `update(done)` as runs finish, `stop()` at the end. */
export interface Progress {
  update(done: number): void;
  stop(): void;
}

const none: Progress = { update() {}, stop() {} };

/** Runs per second and the time left, from `done` of `total` after `ms`. */
function rate(done: number, total: number, ms: number): string {
  if (done === 0 || ms <= 0) return 'starting';
  const perS = (done * 1000) / ms;
  const left = ((total - done) / done) * ms;
  return `${perS >= 10 ? num(Math.round(perS)) : perS.toFixed(1)} runs/s, ETA ${formatDuration(left)}`;
}

/** Progress over `total` runs: a bar on a terminal, else a line every few seconds. */
export function progressBar(io: Io, total: number, label: string): Progress {
  if (total < MIN_RUNS) return none;
  const t0 = io.now();
  if (!io.stderrIsTTY) {
    let last = t0;
    return {
      update(done) {
        const t = io.now();
        if (t - last < LINE_EVERY_MS) return;
        last = t;
        io.err(`${label}: ${num(done)}/${num(total)} runs (${rate(done, total, t - t0)})`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} {bar} {value}/{total} runs | {speed} runs/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 100,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { speed: '-' });
  return {
    update: (done) => {
      const s = (io.now() - t0) / 1000;
      bar.update(done, { speed: s > 0 ? ((done / s) as number).toFixed(1) : '-' });
    },
    stop: () => bar.stop(),
  };
}

/**
 * A status for one long run, fed by the kernel's tick: steps, virtual time and heap, on one
 * rewritten line on a terminal, else a line every few seconds.
 */
export function runStatus(
  io: Io,
  label: string,
): { tick(steps: number, ns: number): void; stop(): void } {
  const t0 = io.now();
  let last = t0;
  let shown = false;
  return {
    tick(steps, ns) {
      const t = io.now();
      if (t - t0 < RUN_QUIET_MS || t - last < (io.stderrIsTTY ? 250 : LINE_EVERY_MS)) return;
      last = t;
      const heap = (process.memoryUsage().heapUsed / 2 ** 20).toFixed(0);
      const line = `${label}: ${num(steps)} steps, virtual ${formatDuration(ns / 1e6)}, heap ${heap} MiB, ${formatDuration(t - t0)} so far`;
      if (io.stderrIsTTY) {
        process.stderr.write(`\r${line}\u001b[K`);
        shown = true;
      } else io.err(line);
    },
    stop() {
      if (shown) process.stderr.write('\r\u001b[K');
    },
  };
}
