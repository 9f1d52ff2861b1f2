// The per-task timeline of a recorded run: the events that explain a race, one line each,
// prefixed by the step and the task, with a marker wherever the scheduler preempted a task.
// By default it shows the protocol (see TimelineMode); lock traffic only on request.
import type { TraceEvent } from '../kernel/trace.ts';
import type { TraceRecorder } from '../kernel/trace-export.ts';
import '../drivers/rdma/events.ts';
import '../mm/events.ts';

/** One line of a timeline. */
export interface TimelineEntry {
  /** Scheduler step of the event. */
  readonly step: number;
  /** Virtual time, ns. */
  readonly timeNs: number;
  /** The acting task's name (`-` outside any task: quiescence checks). */
  readonly task: string;
  /**
   * The trace event type (`mmu-start`, `dev-map`, ...), `preempt` for a preemption, or
   * `lock-cycle` for a lock taken and released with no shown event in between.
   */
  readonly event: string;
  /** What happened, in words. */
  readonly text: string;
}

const hex = (n: number) => `0x${n.toString(16)}`;
const range = (start: number, end: number) => `[${hex(start)}, ${hex(end)})`;

/** The line of an interesting event, or null for the events a timeline leaves out. */
function describe(e: TraceEvent, name: (id: number) => string): string | null {
  switch (e.type) {
    case 'lock-acquire':
      return `lock ${e.lock}${e.mode === 'read' ? ' (read)' : ''}${e.trylock ? ' (trylock)' : ''}`;
    case 'lock-contend':
      return `waits for ${e.lock}${e.mode === 'read' ? ' (read)' : ''}`;
    case 'lock-release':
      return `unlock ${e.lock}`;
    case 'sleep':
      return `sleeps on ${e.on}`;
    case 'wake':
      return `wakes ${name(e.woken)} (${e.on})`;
    case 'mmu-start':
      return `invalidate_range_start ${e.event} mm${e.mm} ${range(e.start, e.end)}${e.blockable ? '' : ' non-blockable'}`;
    case 'mmu-start-done':
      return e.ok ? null : 'invalidate_range_start failed (EAGAIN)';
    case 'mmu-end':
      return `invalidate_range_end ${e.event} mm${e.mm} ${range(e.start, e.end)}`;
    case 'seq-begin':
      return `${e.owner} mm${e.mm}: ${e.fn} → ${e.seq}${e.waited ? ' (after waiting for an invalidation to end)' : ''}`;
    case 'seq-check':
      return `${e.owner} mm${e.mm}: ${e.fn}(${e.seq}) → ${e.retry ? 'retry' : 'no retry'} (seq ${e.cur}${e.inProgress === undefined ? '' : `, ${e.inProgress} in progress`})`;
    case 'seq-invalidate':
      return `${e.owner} mm${e.mm}: invalidation ${e.phase === 'start' ? 'starts' : 'ends'} (seq ${e.seq}, ${e.inProgress} in progress)`;
    case 'itree-invalidate':
      return `interval ->invalidate ${e.event} mm${e.mm} ${range(e.start, e.end)} seq ${e.seq}`;
    case 'mmu-release':
      return `mmu_notifier_release mm${e.mm}`;
    case 'pte-set':
      return `pte mm${e.mm} ${hex(e.addr)} = pfn ${e.pfn}.${e.gen} ${e.writable ? 'rw' : e.readable ? 'ro' : 'none'}`;
    case 'pte-clear':
      return `pte mm${e.mm} ${hex(e.addr)} cleared (was pfn ${e.pfn}.${e.gen})${e.to ? ` to a ${e.to} entry` : ''}`;
    case 'tlb-fill':
      return `${e.kind === 'cpu' ? 'TLB' : 'IOTLB'} ${e.tlb} caches mm${e.mm} ${hex(e.addr)} -> pfn ${e.pfn}.${e.gen} ${e.writable ? 'rw' : 'ro'}`;
    case 'tlb-flush':
      return `TLB flush mm${e.mm} ${range(e.start, e.end)} on every CPU`;
    case 'iotlb-flush':
      return `IOTLB ${e.tlb} invalidates mm${e.mm} ${range(e.start, e.end)}`;
    case 'tlb-revoked':
      return `${e.call} returns: mm${e.mm} ${range(e.start, e.end)} revoked`;
    case 'cpu-fault':
      return `CPU ${e.write ? 'write' : 'read'} fault mm${e.mm} ${hex(e.addr)}`;
    case 'dev-fault':
      return `${e.dev} ${e.write ? 'write' : 'read'} fault mm${e.mm} ${range(e.start, e.end)}`;
    case 'dev-retry':
      return `${e.dev} fault retries ${hex(e.start)} (${e.reason})`;
    case 'dev-map':
      return `${e.dev} maps mm${e.mm} ${hex(e.addr)} -> pfn ${e.pfn}.${e.gen} ${e.writable ? 'rw' : 'ro'}`;
    case 'dev-unmap':
      return `${e.dev} unmaps mm${e.mm} ${hex(e.addr)}`;
    case 'dev-access':
      return `${e.dev} ${e.write ? 'writes' : 'reads'} mm${e.mm} ${hex(e.addr)}`;
    case 'dev-update':
      return `${e.dev} translation update ${e.phase === 'begin' ? 'posted' : 'done'}`;
    case 'dev-retire':
      return `${e.dev} destroyed`;
    case 'dev-own-migrate':
      return `${e.dev} ${e.phase === 'begin' ? 'begins' : 'ends'} its own migration of mm${e.mm} ${range(e.start, e.end)}`;
    case 'dev-dma':
      return `${e.dev} DMA ${e.write ? 'write' : 'read'} pfn ${e.pfn}.${e.gen}`;
    case 'obj-free':
      return `${e.obj} freed`;
    case 'rdma-pagefault':
      return `${e.dev} qp${e.qp} ${e.requester ? 'requester' : 'responder'} page fault (${e.subtype})`;
    case 'rdma-resume':
      return `${e.dev} qp${e.qp} PAGE_FAULT_RESUME${e.error ? ' with error' : ''}`;
    case 'rdma-nak':
      return `${e.dev} qp${e.qp} psn ${e.psn}: ${e.kind === 'rnr' ? 'RNR NAK' : e.kind === 'drop' ? 'no response (timeout)' : 'NAK'}`;
    case 'rdma-wc':
      return `${e.dev} qp${e.qp} ${e.opcode} completes ${e.status}`;
    case 'odp-umem':
      return `${e.umem} ${e.state === 'deferred' ? 'registered inactive (a notifier is running)' : e.state === 'active' ? 'registered active' : 'activated'}`;
    case 'odp-notifiers-idle':
      return `${e.ctx}: no notifier running now; ${e.waiting === 0 ? 'no umem waits to be activated' : `activating ${e.waiting} waiting umem(s)`}`;
    case 'page-alloc':
      return `alloc pfn ${e.pfn}.${e.gen} (${e.kind})`;
    case 'page-free':
      return `free pfn ${e.pfn}.${e.gen}`;
    case 'note':
      return `note: ${e.text}`;
    case 'bug':
      return e.message;
    default:
      return null;
  }
}

/**
 * What a timeline shows: 'protocol' (the default) the events of the coherence protocol
 * (invalidations, sequence reads and checks, CPU and device page-table changes, device
 * accesses, frees, sleeps and wake-ups other than on a lock) and the preemptions; 'full' also
 * every lock taken, contended and released.
 */
export type TimelineMode = 'protocol' | 'full';

const LOCK_EVENTS: ReadonlySet<string> = new Set(['lock-acquire', 'lock-contend', 'lock-release']);

/** The timeline of a recorded run: its interesting events and its preemptions. */
export function buildTimeline(
  rec: TraceRecorder,
  mode: TimelineMode = 'protocol',
): TimelineEntry[] {
  const name = (id: number) => rec.taskName(id);
  const full = mode === 'full';
  const out: TimelineEntry[] = [];
  let lastPreempted = '';
  // Protocol mode hides lock waits too: a task that contended a lock sleeps on it (until it
  // takes it), and the wake-ups on those labels are lock hand-overs.
  const contending = new Map<number, string>();
  const lockLabels = new Set<string>();
  for (const e of rec.events) {
    if (e.type === 'switch') {
      if (!e.preempted) continue;
      // Preemptions with nothing shown in between are one: A→B→C shows as C preempting A.
      let from = name(e.from);
      if (out[out.length - 1]?.event === 'preempt') {
        out.pop();
        from = lastPreempted;
      }
      const task = name(e.task);
      if (task !== from)
        out.push({
          step: e.step,
          timeNs: e.time,
          task,
          event: 'preempt',
          text: `preempts ${from}`,
        });
      lastPreempted = from;
      continue;
    }
    if (!full) {
      if (LOCK_EVENTS.has(e.type)) {
        if (e.type === 'lock-contend') contending.set(e.task, ` ${e.lock}`);
        else if (e.type === 'lock-acquire') contending.delete(e.task);
        continue;
      }
      if (e.type === 'sleep') {
        const lock = contending.get(e.task);
        if (lock !== undefined && e.on.endsWith(lock)) {
          lockLabels.add(e.on);
          continue;
        }
      }
      if (e.type === 'wake' && lockLabels.has(e.on)) continue;
    }
    const text = describe(e, name);
    if (text === null) continue;
    const task = name(e.task);
    // A lock taken and dropped with nothing shown in between is one line.
    const prev = out[out.length - 1];
    if (
      e.type === 'lock-release' &&
      prev !== undefined &&
      prev.event === 'lock-acquire' &&
      prev.task === task &&
      (prev.text === `lock ${e.lock}` || prev.text.startsWith(`lock ${e.lock} (`))
    ) {
      out[out.length - 1] = {
        ...prev,
        event: 'lock-cycle',
        text: `lock+unlock ${prev.text.slice(5)}`,
      };
      continue;
    }
    out.push({ step: e.step, timeNs: e.time, task, event: e.type, text });
  }
  return out;
}

/**
 * Renders a timeline as text, one line per entry (`step  task  what`); preemptions are drawn
 * as separators. Only the last `limit` entries are shown (the ones nearest the bug).
 */
export function renderTimeline(entries: readonly TimelineEntry[], limit = 200): string[] {
  const shown = entries.slice(Math.max(0, entries.length - limit));
  const width = Math.max(4, ...shown.map((e) => e.task.length));
  const stepWidth = Math.max(4, ...shown.map((e) => String(e.step).length));
  const lines: string[] = [];
  if (shown.length < entries.length)
    lines.push(
      `  ... ${entries.length - shown.length} earlier events (all of them with --json, or in the file --log <file> writes)`,
    );
  for (const e of shown) {
    const step = String(e.step).padStart(stepWidth);
    if (e.event === 'preempt') lines.push(`  ${step}  ── ${e.task} ${e.text} ──`);
    else lines.push(`  ${step}  ${e.task.padEnd(width)}  ${e.text}`);
  }
  return lines;
}
