// Text formatting shared by the commands (numbers and durations: lib/format.ts). Nothing here depends on the locale or the clock, so
// the same run prints the same report (elapsed times aside).
import { formatNs, num, plural } from '../lib/format.ts';

export { formatNs, num, plural };

import type { DeviceCounters } from '../check/counters.ts';
import type { OracleVerdict, RdmaStats, RunStats } from './stats.ts';

/** Wall time for the `elapsed` lines (the only nondeterministic part of a report). */
export function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${num(Math.round(ms))} ms`;
}

/** A wall-clock duration for people: ms, s, min or h as the size asks. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return formatMs(ms);
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

function breakdown(counts: Readonly<Record<string, number>>): string {
  const parts = Object.entries(counts).map(([k, v]) => `${k} ${num(v)}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** The statistics block of a run report. */
export function formatStats(s: RunStats): string[] {
  const row = (label: string, value: string) => `  ${label.padEnd(20)}${value}`;
  return [
    'Statistics',
    row(
      'steps',
      `${num(s.steps)} (${plural(s.contextSwitches, 'context switch', 'context switches')}, ${plural(s.preemptions, 'preemption')})`,
    ),
    row('virtual time', formatNs(s.virtualTimeNs)),
    row('CPU faults', num(s.cpuFaults)),
    row(
      'device faults',
      `${num(s.devFaults)}, ${plural(s.devRetries, 'retry', 'retries')}${breakdown(s.devRetriesByReason)}`,
    ),
    row('device accesses', num(s.devAccesses)),
    row(
      'TLBs',
      `${num(s.tlb.cpuFills)} CPU fills, ${plural(s.tlb.cpuFlushes, 'flush', 'flushes')}${s.tlb.iotlbFills + s.tlb.iotlbFlushes > 0 ? `; IOTLB ${num(s.tlb.iotlbFills)} fills, ${plural(s.tlb.iotlbFlushes, 'invalidation')}` : ''}`,
    ),
    row('invalidations', `${num(s.invalidations)}${breakdown(s.invalidationsByEvent)}`),
    ...(s.intervalInvalidations > 0
      ? [row('interval callbacks', num(s.intervalInvalidations))]
      : []),
    row(
      'pages mirrored',
      `${num(s.mirrored.distinctPages)} distinct; ${num(s.mirrored.final)} mapped at the end (peak ${num(s.mirrored.peak)})`,
    ),
    row('frames in use', `peak ${num(s.frames.peak)}, at the end ${num(s.frames.final)}`),
    ...(s.rdma === null ? [] : formatRdma(s.rdma, row)),
  ];
}

function formatRdma(r: RdmaStats, row: (label: string, value: string) => string): string[] {
  return [
    row(
      'HCA page faults',
      `${num(r.pageFaultEvents)} (${num(r.requesterFaults)} requester), ${plural(r.resumes, 'resume')} (${num(r.resumeErrors)} with error)`,
    ),
    row(
      'RC retries',
      `${plural(r.rnrNaks, 'RNR NAK')}, ${plural(r.drops, 'timeout')}, ${plural(r.naks, 'error NAK')}`,
    ),
    row('send completions', breakdown(r.completions).slice(2, -1) || 'none'),
  ];
}

/** The devices' counters block of a run report (nothing when no device has counters). */
export function formatCounters(list: readonly DeviceCounters[]): string[] {
  if (list.length === 0) return [];
  const width = Math.max(...list.map((d) => d.device.length));
  const lines = ['ODP counters'];
  for (const d of list) {
    const values = Object.entries(d.counters).map(([name, v]) => `${name} ${num(v)}`);
    lines.push(`  ${d.device.padEnd(width)}  ${values.join(', ')}`);
  }
  return [...lines, ''];
}

/** The oracle block of a run report. */
export function formatVerdicts(verdicts: readonly OracleVerdict[]): string[] {
  const width = Math.max(...verdicts.map((v) => v.name.length));
  const lines = ['Oracles'];
  for (const v of verdicts) {
    const checks = v.checks === null ? '' : `  ${plural(v.checks, 'check')}`;
    lines.push(`  ${v.name.padEnd(width)}  ${v.verdict === 'pass' ? 'pass' : 'FAIL'}${checks}`);
    if (v.message !== null) lines.push(`    ${v.message}`);
  }
  return lines;
}

/**
 * A text table: the header, a rule, then the rows, each column as wide as its widest cell;
 * the first column left-aligned, the others right-aligned (they hold numbers).
 */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}`;
  return [line(header), `  ${widths.map((w) => '-'.repeat(w)).join('  ')}`, ...rows.map(line)];
}
