/**
 * The trace bus: every significant action emits a typed event, any number of subscribers
 * (oracles, recorders, exporters) listen. Higher layers add event types by merging into
 * {@link TraceEventMap}:
 *
 * ```ts
 * declare module '../kernel/trace.ts' {
 *   interface TraceEventMap { 'pte-set': { mm: number; addr: number } }
 * }
 * ```
 *
 * Emitters guard with `if (bus.on)` so that, with no subscriber, no event object is built.
 */

/** Payloads of the kernel layer's events, keyed by event type. */
export interface TraceEventMap {
  /** A task was created. */
  spawn: { id: number; name: string };
  /** The scheduler switched from one task to another (`from` is -1 at the first step). */
  switch: { from: number; preempted: boolean };
  /** A task finished, returning or throwing. */
  exit: { ok: boolean };
  /** A lock was taken (`mode` 'read' for rwsem readers and SRCU, else 'write'). */
  'lock-acquire': { lock: string; mode: 'read' | 'write'; trylock: boolean };
  /** A lock attempt found the lock busy; the task will wait. */
  'lock-contend': { lock: string; mode: 'read' | 'write' };
  /** A lock was released. */
  'lock-release': { lock: string; mode: 'read' | 'write' };
  /** The task blocked, waiting on `on`. */
  sleep: { on: string };
  /** `woken` was made runnable by the emitting task. */
  wake: { woken: number; on: string };
  /** Virtual time was spent (delay or sleep). */
  delay: { ns: number };
  /** A kernel bug ended the run. */
  bug: { rule: string; message: string };
  /** A free-form annotation from a scenario. */
  note: { text: string };
  /**
   * A reference to a tracked object was taken (kref_get, a usecount, an SRCU-protected lookup);
   * `lookup` when it was found by a lookup rather than copied from a reference already held.
   */
  'obj-get': { obj: string; lookup: boolean };
  /** A reference to a tracked object was dropped. */
  'obj-put': { obj: string };
  /** A tracked object was freed. */
  'obj-free': { obj: string };
  /** A tracked object was revoked: no lookup may find it (take a reference) from now on. */
  'obj-revoke': { obj: string };
}

/** Fields every event carries: the scheduler step, virtual time in ns, and the acting task id. */
export interface TraceHeader {
  readonly step: number;
  readonly time: number;
  readonly task: number;
}

/** One trace event: a header plus the payload of its type. */
export type TraceEvent = {
  [K in keyof TraceEventMap]: TraceHeader & { readonly type: K } & TraceEventMap[K];
}[keyof TraceEventMap];

/** An event of one type. */
export type TraceEventOf<K extends keyof TraceEventMap> = Extract<TraceEvent, { type: K }>;

/** A trace subscriber. It may throw a KernelBug to end the run (that is how oracles report). */
export type TraceListener = (event: TraceEvent) => void;

/** The clock and position the bus stamps on events. */
export interface TraceStamp {
  readonly steps: number;
  readonly now: number;
  currentId(): number;
}

/** The trace bus of one simulated kernel. */
export class TraceBus {
  /** True when at least one subscriber listens; emitters check it before building events. */
  on = false;
  private listeners: TraceListener[] = [];
  private readonly stamp: TraceStamp;

  constructor(stamp: TraceStamp) {
    this.stamp = stamp;
  }

  /** Adds a subscriber; returns a function that removes it. */
  subscribe(listener: TraceListener): () => void {
    this.listeners = [...this.listeners, listener];
    this.on = true;
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
      this.on = this.listeners.length > 0;
    };
  }

  /** Stamps and delivers an event. Call only when {@link on} is true. */
  emit<K extends keyof TraceEventMap>(type: K, payload: TraceEventMap[K]): void {
    // The payload is a fresh literal at every call site: stamp it in place rather than copy.
    const event = payload as TraceEventMap[K] & {
      step: number;
      time: number;
      task: number;
      type: K;
    };
    event.step = this.stamp.steps;
    event.time = this.stamp.now;
    event.task = this.stamp.currentId();
    event.type = type;
    for (const l of this.listeners) l(event as unknown as TraceEvent);
  }
}
