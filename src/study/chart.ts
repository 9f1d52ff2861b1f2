/**
 * What a study plots: a chart as data, drawn to SVG by plot.ts. Kept apart from the drawing so
 * a study's raw series (`--json`) and its plots come from the same values.
 */

/** One line (or one bar group) of a chart: points [x, y]; a null y is a gap (the run failed). */
export interface ChartSeries {
  readonly name: string;
  readonly points: readonly (readonly [number, number | null])[];
}

/** An axis: its label (with the unit), and a log scale for values spanning decades. */
export interface ChartAxis {
  readonly label: string;
  readonly log?: boolean;
}

/** A chart of a study: lines over a numeric x axis. */
export interface ChartSpec {
  /** File stem of the SVG (`<study>-<id>.svg`): lower case, digits and dashes. */
  readonly id: string;
  readonly title: string;
  readonly x: ChartAxis;
  readonly y: ChartAxis;
  readonly series: readonly ChartSeries[];
}
