// `odpsim costs`: the cost table, as the model charges it by default.
import { COST_NAMES, COSTS, type CostEntry } from '../cost/table.ts';
import { RNR_TIMER_NS } from '../drivers/rdma/core/ib-verbs.ts';
import { formatNs } from '../lib/format.ts';
import type { Io } from './io.ts';
import { EXIT } from './options.ts';

/** A cost's value in one line: the base (a fixed value or its quantiles) and its growth. */
export function describeCost(e: CostEntry): string {
  const base =
    typeof e.base === 'number'
      ? formatNs(e.base)
      : `p50 ${formatNs(e.base.p50)}, p95 ${formatNs(e.base.p95)}, p99 ${formatNs(e.base.p99)} (${formatNs(e.base.min)} to ${formatNs(e.base.max)})`;
  if (e.perUnit === undefined) return base;
  const per = `${Number(e.perUnit.toPrecision(3))} ns per ${e.unit}`;
  return e.unit === 'page' ? `${base} for one page, + ${per} after the first` : `${base} + ${per}`;
}

/** Prints the table; returns the exit status. */
export function costsCommand(io: Io, opts: { json: boolean }): number {
  if (opts.json) {
    io.out(JSON.stringify({ command: 'costs', costs: COSTS, rnrTimerNs: RNR_TIMER_NS }, null, 2));
    return EXIT.ok;
  }
  const lines = [
    'odpsim costs: the virtual time each modelled operation is charged (override with --cost NAME=VALUE or --costs FILE on run and study)',
    '',
  ];
  for (const name of COST_NAMES) {
    const e: CostEntry = COSTS[name];
    lines.push(`${name}  ${describeCost(e)}`, `  ${e.what}`, `  source: ${e.source}`, '');
  }
  lines.push(
    'RNR NAK timers (min_rnr_timer, IBA table 45; a QP attribute, not a cost):',
    `  ${RNR_TIMER_NS.map((ns, i) => `${i} = ${ns / 1e6} ms`).join(', ')}`,
  );
  io.out(lines.join('\n'));
  return EXIT.ok;
}
