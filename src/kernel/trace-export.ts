import type { TraceBus, TraceEvent } from './trace.ts';

/** Collects every event of a bus, for export or inspection. */
export class TraceRecorder {
  readonly events: TraceEvent[] = [];
  private readonly names = new Map<number, string>();
  /** Stops recording. */
  readonly detach: () => void;

  constructor(bus: TraceBus) {
    this.detach = bus.subscribe((e) => {
      if (e.type === 'spawn') this.names.set(e.id, e.name);
      this.events.push(e);
    });
  }

  /** The name of task `id` (from its spawn event). */
  taskName(id: number): string {
    return id < 0 ? '-' : (this.names.get(id) ?? `task${id}`);
  }

  /** The compact text log, one line per event. */
  toText(): string {
    return this.events.map((e) => formatEvent(e, (id) => this.taskName(id))).join('\n');
  }

  /** Chrome trace-event JSON (see {@link toChromeTrace}). */
  toChromeTrace(options: ChromeTraceOptions = {}): string {
    return JSON.stringify(toChromeTrace(this.events, options));
  }
}

const HEADER_KEYS = new Set(['step', 'time', 'task', 'type']);

/** One line of the text log: `#step +timens task type key=value ...`. */
export function formatEvent(e: TraceEvent, name: (id: number) => string): string {
  const fields: string[] = [];
  for (const [key, value] of Object.entries(e)) {
    if (HEADER_KEYS.has(key)) continue;
    fields.push(`${key}=${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
  }
  const tail = fields.length > 0 ? ` ${fields.join(' ')}` : '';
  return `#${e.step} ${e.time}ns ${name(e.task)} ${e.type}${tail}`;
}

/**
 * How {@link toChromeTrace} places events in time: 'steps' puts each event at its scheduler
 * step (ts = step index, shown by viewers as one microsecond per step); 'virtual' at its
 * virtual time (ns, written as the format's microseconds); 'auto' (the default) picks
 * 'virtual' when the run's virtual clock advanced (a timed run, or any delay), else 'steps'.
 */
export type ChromeTraceClock = 'auto' | 'steps' | 'virtual';

/** Options of {@link toChromeTrace}. */
export interface ChromeTraceOptions {
  readonly clock?: ChromeTraceClock;
}

/** One Chrome trace-event record. */
export interface ChromeEvent {
  readonly name: string;
  readonly ph: string;
  readonly ts: number;
  readonly pid: number;
  readonly tid: number;
  readonly dur?: number;
  readonly s?: string;
  readonly args?: Record<string, unknown>;
}

/** A Chrome trace-event file (JSON object format). */
export interface ChromeTrace {
  /** Sorted by ts (stably): no track goes back in time. */
  readonly traceEvents: ChromeEvent[];
  /** 'ns' on the virtual clock; on the step clock the format's default, 'ms'. */
  readonly displayTimeUnit: 'ms' | 'ns';
  /** What ts means in this file. */
  readonly otherData: { readonly clock: 'steps' | 'virtual'; readonly ts: string };
}

const TS_MEANING = {
  steps: 'ts = step index (scheduler steps, not time: one step is drawn as 1 µs)',
  virtual: 'ts = virtual µs (the simulated clock, ns / 1000)',
} as const;

/**
 * Chrome trace-event JSON (opens in Perfetto or chrome://tracing): one track per task, a
 * B/E `run` slice for each stretch a task ran, an instant for every other event. The clock
 * in use is named in the process name and in `otherData`; the events come sorted by ts.
 * O(n log n) in the number of events.
 */
export function toChromeTrace(
  events: readonly TraceEvent[],
  options: ChromeTraceOptions = {},
): ChromeTrace {
  const clock = resolveClock(events, options.clock ?? 'auto');
  const virtual = clock === 'virtual';
  const ts = virtual ? (e: TraceEvent) => e.time / 1000 : (e: TraceEvent) => e.step;
  const out: ChromeEvent[] = [
    {
      name: 'process_name',
      ph: 'M',
      ts: 0,
      pid: 1,
      tid: -1,
      args: { name: `odpsim (${TS_MEANING[clock]})` },
    },
    // Events outside any task (quiescence checks) go on their own track.
    { name: 'thread_name', ph: 'M', ts: 0, pid: 1, tid: -1, args: { name: 'kernel' } },
  ];
  let running: number | null = null;
  let end = 0;
  for (const e of events) {
    const t = ts(e);
    if (t > end) end = t;
    if (e.type === 'spawn') {
      out.push({ name: 'thread_name', ph: 'M', ts: 0, pid: 1, tid: e.id, args: { name: e.name } });
      continue;
    }
    if (e.type === 'switch') {
      if (running !== null) out.push({ name: 'run', ph: 'E', ts: t, pid: 1, tid: running });
      running = e.task;
      const args = { preempted: e.preempted, ...(virtual ? { step: e.step } : {}) };
      out.push({ name: 'run', ph: 'B', ts: t, pid: 1, tid: running, args });
      continue;
    }
    const args: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) if (!HEADER_KEYS.has(k)) args[k] = v;
    // On the virtual clock many events share a time: the step orders them for the reader.
    if (virtual) args.step = e.step;
    out.push({ name: e.type, ph: 'i', s: 't', ts: t, pid: 1, tid: e.task, args });
  }
  // The last slice ends after the last event (one step later on the step clock).
  if (running !== null)
    out.push({ name: 'run', ph: 'E', ts: virtual ? end : end + 1, pid: 1, tid: running });
  // Stable: events at the same ts keep their trace order, so each B precedes its E.
  out.sort((a, b) => a.ts - b.ts);
  return {
    traceEvents: out,
    displayTimeUnit: virtual ? 'ns' : 'ms',
    otherData: { clock, ts: TS_MEANING[clock] },
  };
}

/** The clock an 'auto' export uses: virtual time once the virtual clock has left 0. */
function resolveClock(events: readonly TraceEvent[], clock: ChromeTraceClock): 'steps' | 'virtual' {
  if (clock !== 'auto') return clock;
  for (const e of events) if (e.time > 0) return 'virtual';
  return 'steps';
}
