// The command's contact with the outside world: output streams and the real clock. Only the
// CLI reads real time (for elapsed times and the progress bar), never the model.

/** Where a command writes, and the wall clock it may read. */
export interface Io {
  /** Writes one or more lines to stdout. */
  out(text: string): void;
  /** Writes one or more lines to stderr. */
  err(text: string): void;
  /** True when stderr is a terminal (progress bars only then). */
  readonly stderrIsTTY: boolean;
  /** Wall clock, ms. */
  now(): number;
  /**
   * Calls `handler` on Ctrl-C (SIGINT) until the returned function is called; a second Ctrl-C
   * while the handler's command winds down exits at once.
   */
  onInterrupt(handler: () => void): () => void;
}

/** The process's streams and performance.now(). */
export const processIo: Io = {
  out: (text) => {
    process.stdout.write(`${text}\n`);
  },
  err: (text) => {
    process.stderr.write(`${text}\n`);
  },
  stderrIsTTY: process.stderr.isTTY === true,
  now: () => performance.now(),
  onInterrupt(handler) {
    let seen = false;
    const on = (): void => {
      if (seen) process.exit(130);
      seen = true;
      process.stderr.write(
        '\nodpsim: interrupted; finishing the report (Ctrl-C again to quit now)\n',
      );
      handler();
    };
    process.on('SIGINT', on);
    return () => {
      process.off('SIGINT', on);
    };
  },
};
