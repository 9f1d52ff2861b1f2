// A progress bar on stderr for long explorations, only when stderr is a terminal.
import cliProgress from 'cli-progress';
import type { Io } from './io.ts';

/** Explorations of fewer runs finish too fast for a bar to help. */
const MIN_RUNS = 200;

/** A progress sink: `update(done)` after each run, `stop()` at the end. */
export interface Progress {
  update(done: number): void;
  stop(): void;
}

const none: Progress = { update() {}, stop() {} };

/** A bar over `total` runs when stderr is a TTY and the exploration is long; else nothing. */
export function progressBar(io: Io, total: number, label: string): Progress {
  if (!io.stderrIsTTY || total < MIN_RUNS) return none;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} {bar} {value}/{total} runs | {duration_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 100,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return {
    update: (done) => bar.update(done),
    stop: () => bar.stop(),
  };
}
