/**
 * What every `odpsim study` returns: tables to print, charts to draw, and the raw series for
 * `--json`. A study runs worlds in virtual time and measures them; it never reads a real clock.
 */
import type { CostOverrides } from '../cost/model.ts';
import type { ChartSpec } from './chart.ts';

/** A table of a study: a header and rows of already formatted cells. */
export interface StudyTable {
  readonly title: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** The outcome of one study. */
export interface StudyResult {
  /** The study's name, as `odpsim study <name>` takes it. */
  readonly study: string;
  /** One line saying what was run. */
  readonly title: string;
  readonly tables: readonly StudyTable[];
  /** Lines printed after the tables: how to read them, what was assumed. */
  readonly notes: readonly string[];
  readonly charts: readonly ChartSpec[];
  /** The raw measurements (`--json`), plain JSON values. */
  readonly data: unknown;
}

/** What every study takes. */
export interface StudyOptions {
  /** Cost constants overridden by the user (`--cost`, `--costs`). */
  readonly costs?: CostOverrides;
  /** Seed of the worlds' PRNGs (and so of the cost distributions' draws). Default 1. */
  readonly seed?: number;
}
