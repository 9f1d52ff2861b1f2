// The files a command writes besides its report (--trace, --log): each path is tried before the
// run, so a bad one costs nothing; a write that still fails afterwards is reported next to the
// report, never instead of it.
import { closeSync, openSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Io } from './io.ts';
import { EXIT, UsageError } from './options.ts';

/** The output files a command was asked for, by option name (without the dashes). */
export type OutputPaths = Readonly<Record<string, string | undefined>>;

/**
 * Checks that each path can be written: not a directory, its directory exists, and the file
 * can be created or appended to (a file created by the check is removed again). A bad path is
 * a usage error naming the option.
 */
export function checkOutputs(paths: OutputPaths): void {
  for (const [option, path] of Object.entries(paths)) {
    if (path === undefined) continue;
    if (path === '') throw new UsageError(`--${option}: empty file name`);
    let existed = true;
    let directory = false;
    try {
      directory = statSync(path).isDirectory();
    } catch {
      existed = false;
    }
    if (directory) throw new UsageError(`--${option} ${path}: is a directory (name a file)`);
    try {
      closeSync(openSync(path, 'a'));
      if (!existed) unlinkSync(path);
    } catch (e) {
      throw new UsageError(`--${option} ${path}: cannot write (${reason(e)})`);
    }
  }
}

function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code ?? (e instanceof Error ? e.message : String(e));
}

/** What {@link writeOutputs} did: the files written, and one line per failed write. */
export interface Written {
  readonly written: string[];
  readonly failed: string[];
}

/** Writes each file whose path is set; a failure becomes a line, not an exception. */
export function writeOutputs(
  files: readonly { readonly path: string | undefined; readonly data: () => string }[],
): Written {
  const out: Written = { written: [], failed: [] };
  for (const f of files) {
    if (f.path === undefined) continue;
    try {
      writeFileSync(f.path, f.data());
      out.written.push(f.path);
    } catch (e) {
      out.failed.push(`odpsim: could not write ${f.path} (${reason(e)}); the report is complete`);
    }
  }
  return out;
}

/** Prints failed writes on stderr; a clean run whose file could not be written exits 4. */
export function reportWrites(io: Io, w: Written, status: number): number {
  for (const line of w.failed) io.err(line);
  return w.failed.length > 0 && status === EXIT.ok ? EXIT.output : status;
}

/** The files a report names: each path written, or null (not asked for, or not written). */
export interface FilesJson {
  readonly trace: string | null;
  readonly log: string | null;
  readonly html: string | null;
}

/** The files a command was asked to write of a recorded run (`--trace`, `--log`, `--html`). */
export interface RecordingPaths {
  readonly trace?: string | undefined;
  readonly log?: string | undefined;
  readonly html?: string | undefined;
}

/** The trace, log and web-view paths actually written. */
export function writtenFiles(w: Written, o: RecordingPaths): FilesJson {
  const ok = (p: string | undefined) => (p !== undefined && w.written.includes(p) ? p : null);
  return { trace: ok(o.trace), log: ok(o.log), html: ok(o.html) };
}

/** The report's lines about the files written. */
export function wroteLines(files: FilesJson): string[] {
  const lines: string[] = [];
  if (files.trace !== null)
    lines.push(`wrote ${files.trace} (Chrome trace JSON: open it in https://ui.perfetto.dev)`);
  if (files.log !== null) lines.push(`wrote ${files.log} (text log, one event per line)`);
  if (files.html !== null)
    lines.push(`wrote ${files.html} (web view: open it in a browser; no network needed)`);
  return lines;
}
