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

/** How {@link toChromeTrace} places events in time. */
export interface ChromeTraceOptions {
  /** 'steps' (default): one microsecond per scheduler step; 'virtual': virtual time. */
  readonly clock?: 'steps' | 'virtual';
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

/**
 * Chrome trace-event JSON (opens in Perfetto or chrome://tracing): one track per task, a slice
 * for each stretch a task ran, an instant for every other event.
 */
export function toChromeTrace(
  events: readonly TraceEvent[],
  options: ChromeTraceOptions = {},
): { traceEvents: ChromeEvent[]; displayTimeUnit: string } {
  const ts =
    options.clock === 'virtual' ? (e: TraceEvent) => e.time / 1000 : (e: TraceEvent) => e.step;
  const out: ChromeEvent[] = [
    { name: 'process_name', ph: 'M', ts: 0, pid: 1, tid: -1, args: { name: 'odpsim' } },
    // Events outside any task (quiescence checks) go on their own track.
    { name: 'thread_name', ph: 'M', ts: 0, pid: 1, tid: -1, args: { name: 'kernel' } },
  ];
  let running: { tid: number; start: number } | null = null;
  const close = (end: number) => {
    if (running !== null)
      out.push({
        name: 'run',
        ph: 'X',
        ts: running.start,
        dur: Math.max(end - running.start, 0),
        pid: 1,
        tid: running.tid,
      });
  };
  for (const e of events) {
    const t = ts(e);
    if (e.type === 'spawn') {
      out.push({ name: 'thread_name', ph: 'M', ts: 0, pid: 1, tid: e.id, args: { name: e.name } });
      continue;
    }
    if (e.type === 'switch') {
      close(t);
      running = { tid: e.task, start: t };
      continue;
    }
    const args: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) if (!HEADER_KEYS.has(k)) args[k] = v;
    out.push({ name: e.type, ph: 'i', s: 't', ts: t, pid: 1, tid: e.task, args });
  }
  const last = events[events.length - 1];
  close(last === undefined ? 0 : ts(last) + 1);
  return { traceEvents: out, displayTimeUnit: 'ns' };
}
