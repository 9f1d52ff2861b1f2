// What the web view shows, computed once from a recorded trace: task swimlanes (running slices,
// lock holds, invalidations, device marks) and the page grid (each page's CPU entry and each
// device's translation as runs of steps), with the steps where they disagree.

import type { TimelineEntry } from '../cli/timeline.ts';
import type { TraceRecorder } from '../kernel/trace-export.ts';

/** CPU entry states, as the grid colours them. */
export const CPU_STATES = ['absent', 'read-only', 'writable', 'swap', 'migration'] as const;
/** Device translation states. */
export const DEV_STATES = ['absent', 'read', 'write'] as const;

/**
 * A run of steps from `from` on with one state (index into the states) and frame (`pfn.gen`,
 * as the timeline writes it; '' for none): a frame freed and reused is another frame.
 */
export type Segment = readonly [from: number, state: number, frame: string];

/** One row of the grid: the CPU entry of a page, or one device's translation of it. */
export interface GridRow {
  /** `mm1 0x7effffffc000` (the page), and whose entry: `CPU` or the device's name. */
  readonly page: string;
  readonly owner: string;
  readonly kind: 'cpu' | 'dev';
  readonly segments: readonly Segment[];
}

/** Steps [from, to) where a device translation disagrees with the CPU entry of its page. */
export type Incoherence = readonly [row: number, from: number, to: number];

/** A span on a task's lane. */
export interface Span {
  readonly task: number;
  readonly kind: 'run' | 'lock' | 'invalidate';
  readonly from: number;
  readonly to: number;
  readonly label: string;
}

/** A mark on a task's lane at one step. */
export interface Mark {
  readonly task: number;
  readonly kind: 'fault' | 'commit' | 'retry' | 'bug';
  readonly step: number;
  readonly label: string;
}

/** Everything the page draws; plain JSON. */
export interface ViewModel {
  readonly meta: {
    readonly title: string;
    /** Lines of the header: scenario, parameters, mutants, token. */
    readonly lines: readonly string[];
  };
  /** The last step of the run (the x axis ends one past it). */
  readonly lastStep: number;
  readonly tasks: readonly string[];
  readonly spans: readonly Span[];
  readonly marks: readonly Mark[];
  readonly rows: readonly GridRow[];
  readonly incoherent: readonly Incoherence[];
  /** The events in words, by step (the panel at the cursor). */
  readonly events: readonly (readonly [step: number, task: string, text: string])[];
  /** The oracle's violation, if the run ended in one. */
  readonly violation: { readonly step: number; readonly message: string } | null;
}

const hex = (n: number) => `0x${n.toString(16)}`;
const frame = (pfn: number, gen: number) => `${pfn}.${gen}`;

/** Open intervals per key (lock holds, invalidations): start step by key. */
class Opened {
  private readonly open = new Map<string, number>();
  constructor(private readonly close: (key: string, from: number, to: number) => void) {}
  start(key: string, step: number): void {
    if (!this.open.has(key)) this.open.set(key, step);
  }
  end(key: string, step: number): void {
    const from = this.open.get(key);
    if (from === undefined) return;
    this.open.delete(key);
    this.close(key, from, step);
  }
  /** Closes whatever is still open at the end of the run. */
  finish(step: number): void {
    for (const key of [...this.open.keys()]) this.end(key, step);
  }
}

/** Rows by page: the CPU row and one per device, created as pages appear. */
class Grid {
  readonly rows: { page: string; owner: string; kind: 'cpu' | 'dev'; segments: Segment[] }[] = [];
  private readonly byKey = new Map<string, number>();

  row(page: string, owner: string, kind: 'cpu' | 'dev'): number {
    const key = `${page}|${owner}`;
    let i = this.byKey.get(key);
    if (i === undefined) {
      i = this.rows.length;
      this.byKey.set(key, i);
      this.rows.push({ page, owner, kind, segments: [[0, 0, '']] });
    }
    return i;
  }

  set(row: number, step: number, state: number, frame: string): void {
    const segs = this.rows[row]!.segments;
    const last = segs[segs.length - 1]!;
    if (last[1] === state && last[2] === frame) return;
    if (last[0] === step) segs[segs.length - 1] = [step, state, frame];
    else segs.push([step, state, frame]);
  }
}

/** The state of `row` at `step` (the segment covering it). */
export function stateAt(segments: readonly Segment[], step: number): Segment {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (segments[mid]![0] <= step) lo = mid;
    else hi = mid - 1;
  }
  return segments[lo]!;
}

/**
 * True when a device translation disagrees with the CPU entry: it maps a frame the CPU entry
 * does not (absent, moved, or freed and reused), or it can write where the CPU cannot. The
 * coherence oracle's rule, read off the grid.
 */
export function disagrees(cpu: Segment, dev: Segment): boolean {
  if (dev[1] === 0) return false;
  if (cpu[1] !== 1 && cpu[1] !== 2) return true;
  return cpu[2] !== dev[2] || (dev[1] === 2 && cpu[1] !== 2);
}

/**
 * Builds the view of a recorded run. `timeline` gives the events in words (the full timeline);
 * `lines` the header.
 */
export function buildViewModel(
  rec: TraceRecorder,
  timeline: readonly TimelineEntry[],
  meta: ViewModel['meta'],
): ViewModel {
  const tasks: string[] = [];
  const spans: Span[] = [];
  const marks: Mark[] = [];
  const grid = new Grid();
  let lastStep = 0;
  let violation: ViewModel['violation'] = null;
  let running: { task: number; from: number } | null = null;
  const locks = new Opened((key, from, to) => {
    const [task, lock] = splitKey(key);
    spans.push({ task, kind: 'lock', from, to, label: lock });
  });
  const invalLabel = new Map<number, string>();
  const invals = new Opened((key, from, to) => {
    const [task, id] = splitKey(key);
    const label = invalLabel.get(Number(id)) ?? `invalidation ${id}`;
    spans.push({ task, kind: 'invalidate', from, to, label });
  });
  const pageOf = (mm: number, addr: number) => `mm${mm} ${hex(addr - (addr % 4096))}`;
  for (const e of rec.events) {
    lastStep = Math.max(lastStep, e.step);
    switch (e.type) {
      case 'spawn':
        tasks[e.id] = e.name;
        break;
      case 'switch':
        if (running !== null && running.from < e.step)
          spans.push({
            task: running.task,
            kind: 'run',
            from: running.from,
            to: e.step,
            label: 'runs',
          });
        running = { task: e.task, from: e.step };
        break;
      case 'lock-acquire':
        locks.start(`${e.task}|${e.lock}`, e.step);
        break;
      case 'lock-release':
        locks.end(`${e.task}|${e.lock}`, e.step + 1);
        break;
      case 'mmu-start': {
        const label = `${e.event} mm${e.mm} [${hex(e.start)}, ${hex(e.end)})`;
        invalLabel.set(e.id, label);
        invals.start(`${e.task}|${e.id}`, e.step);
        break;
      }
      case 'mmu-end':
        invals.end(`${e.task}|${e.id}`, e.step + 1);
        break;
      case 'pte-set':
        grid.set(
          grid.row(pageOf(e.mm, e.addr), 'CPU', 'cpu'),
          e.step,
          e.writable ? 2 : 1,
          frame(e.pfn, e.gen),
        );
        break;
      case 'pte-clear': {
        const state = e.to === 'swap' ? 3 : e.to === 'migration' ? 4 : 0;
        grid.set(grid.row(pageOf(e.mm, e.addr), 'CPU', 'cpu'), e.step, state, '');
        break;
      }
      case 'dev-map': {
        const page = pageOf(e.mm, e.addr);
        grid.row(page, 'CPU', 'cpu');
        grid.set(grid.row(page, e.dev, 'dev'), e.step, e.writable ? 2 : 1, frame(e.pfn, e.gen));
        marks.push({
          task: e.task,
          kind: 'commit',
          step: e.step,
          label: `${e.dev} maps ${page} → pfn ${e.pfn}`,
        });
        break;
      }
      case 'dev-unmap':
        grid.set(grid.row(pageOf(e.mm, e.addr), e.dev, 'dev'), e.step, 0, '');
        break;
      case 'dev-fault':
        marks.push({
          task: e.task,
          kind: 'fault',
          step: e.step,
          label: `${e.dev} ${e.write ? 'write' : 'read'} fault mm${e.mm} [${hex(e.start)}, ${hex(e.end)})`,
        });
        break;
      case 'dev-retry':
        marks.push({
          task: e.task,
          kind: 'retry',
          step: e.step,
          label: `${e.dev} retries (${e.reason})`,
        });
        break;
      case 'bug':
        marks.push({ task: e.task, kind: 'bug', step: e.step, label: e.message });
        violation = { step: e.step, message: e.message };
        break;
      default:
    }
  }
  if (running !== null)
    spans.push({
      task: running.task,
      kind: 'run',
      from: running.from,
      to: lastStep + 1,
      label: 'runs',
    });
  locks.finish(lastStep + 1);
  invals.finish(lastStep + 1);
  const rows = orderRows(grid.rows);
  return {
    meta,
    lastStep,
    tasks: tasks.map((t, i) => t ?? `task${i}`),
    spans,
    marks,
    rows,
    incoherent: incoherence(rows, lastStep),
    events: timeline.map((t) => [t.step, t.task, t.text] as const),
    violation,
  };
}

function splitKey(key: string): [number, string] {
  const cut = key.indexOf('|');
  return [Number(key.slice(0, cut)), key.slice(cut + 1)];
}

/** Pages in address order (mm, then address), the CPU row first, then devices by name. */
function orderRows(rows: Grid['rows']): GridRow[] {
  const addr = (page: string) => {
    const [mm, a] = page.split(' ');
    return [Number(mm!.slice(2)), Number.parseInt(a!.slice(2), 16)] as const;
  };
  return [...rows].sort((x, y) => {
    const [am, aa] = addr(x.page);
    const [bm, ba] = addr(y.page);
    if (am !== bm) return am - bm;
    if (aa !== ba) return aa - ba;
    if (x.kind !== y.kind) return x.kind === 'cpu' ? -1 : 1;
    return x.owner < y.owner ? -1 : x.owner > y.owner ? 1 : 0;
  });
}

/** For each device row, the step ranges where it disagrees with its page's CPU row. */
function incoherence(rows: readonly GridRow[], lastStep: number): Incoherence[] {
  const out: Incoherence[] = [];
  const cpuRow = new Map<string, GridRow>();
  for (const r of rows) if (r.kind === 'cpu') cpuRow.set(r.page, r);
  for (const [i, r] of rows.entries()) {
    if (r.kind !== 'dev') continue;
    const cpu = cpuRow.get(r.page)!;
    // Both rows change only at their segment starts: check each boundary.
    const bounds = [
      ...new Set([...r.segments.map((s) => s[0]), ...cpu.segments.map((s) => s[0])]),
    ].sort((a, b) => a - b);
    let open = -1;
    for (const b of bounds) {
      const bad = disagrees(stateAt(cpu.segments, b), stateAt(r.segments, b));
      if (bad && open < 0) open = b;
      if (!bad && open >= 0) {
        out.push([i, open, b]);
        open = -1;
      }
    }
    if (open >= 0) out.push([i, open, lastStep + 1]);
  }
  return out;
}
