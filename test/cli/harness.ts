// Running the odpsim command as a user does, for the CLI tests: the built binary or the source
// entry under tsx, synchronously or not, with the exit status and both streams.
import { spawn, spawnSync } from 'node:child_process';

/** What a command printed and how it exited. */
export interface Ran {
  status: number | null;
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The built binary (the test builds it first). */
export const BIN = ['dist/cli/main.js'];
/** The source entry under tsx (no build needed). */
export const SRC = ['--import', 'tsx', 'src/cli/main.ts'];

/** Runs odpsim with `args` and waits. */
export function odpsimWith(entry: readonly string[], ...args: string[]): Ran {
  const r = spawnSync(process.execPath, [...entry, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The same, without waiting: independent commands run in parallel. `onStart` gets the child
 * (to signal it) once it runs.
 */
export function odpsimAsyncWith(
  entry: readonly string[],
  args: readonly string[],
  onStderr?: (text: string, kill: (signal: NodeJS.Signals) => void) => void,
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...entry, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      onStderr?.(stderr, (s) => child.kill(s));
    });
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/** The JSON report a command printed. */
export function json<T>(r: Ran): T {
  return JSON.parse(r.stdout) as T;
}
