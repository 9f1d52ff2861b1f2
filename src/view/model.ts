// What the web view shows, computed once from a recorded trace: task swimlanes (running slices,
// lock holds, invalidations, device marks) and the page grid (each page's CPU entry, each
// device's translation and each TLB's cached translation as runs of steps), with the steps
// where they disagree.

import type { TimelineEntry } from '../cli/timeline.ts';
import type { TraceEventOf } from '../kernel/trace.ts';
import type { TraceRecorder } from '../kernel/trace-export.ts';
import '../mm/events.ts';

/** CPU entry states, as the grid colours them. */
export const CPU_STATES = ['absent', 'read-only', 'writable', 'swap', 'migration'] as const;
/** Device translation states. */
export const DEV_STATES = ['absent', 'read', 'write'] as const;
/** States of a translation a CPU TLB or a device IOTLB caches. */
export const TLB_STATES = DEV_STATES;

/**
 * A run of steps from `from` on with one state (index into the states) and frame (`pfn.gen`,
 * as the timeline writes it; '' for none): a frame freed and reused is another frame.
 */
export type Segment = readonly [from: number, state: number, frame: string];

/**
 * One row of the grid: the CPU entry of a page, one device's translation of it, or the
 * translation one TLB caches of it (a CPU's TLB or a device's IOTLB).
 */
export interface GridRow {
  /**
   * `mm1 0x7effffffc000` (the page), and whose entry: `CPU`, the device's name, or the cache
   * (`TLB cpu4 (process)`, `IOTLB sva0`).
   */
  readonly page: string;
  readonly owner: string;
  readonly kind: 'cpu' | 'dev' | 'tlb';
  readonly segments: readonly Segment[];
}

/** Steps [from, to) of one grid row. */
export type RowRange = readonly [row: number, from: number, to: number];
/** Steps [from, to) where a device translation disagrees with the CPU entry of its page. */
export type Incoherence = RowRange;
/**
 * Steps [from, to) where a TLB caches a translation its page's CPU entry no longer gives:
 * legal until the flush that follows the change (lazy flushing), a bug if the frame is freed
 * meanwhile (the tlb oracle's stale-tlb).
 */
export type Stale = RowRange;

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
  /** TLB rows: the steps where the cached translation disagrees with the CPU entry. */
  readonly stale: readonly Stale[];
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

/** Rows by page: the CPU row and one per device and per TLB, created as pages appear. */
class Grid {
  readonly rows: { page: string; owner: string; kind: GridRow['kind']; segments: Segment[] }[] = [];
  private readonly byKey = new Map<string, number>();

  row(page: string, owner: string, kind: GridRow['kind']): number {
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

const PAGE = 4096;

/**
 * The caches' live translations, so a flush clears exactly the rows it empties: a CPU TLB
 * flush reaches every CPU TLB of the mm, an IOTLB invalidation its own cache (the tlb
 * oracle's semantics). A cache holds a few dozen translations, so a flush of any range costs
 * at most that many checks per cache.
 */
class Caches {
  /** `mm|tlb` → page address → grid row of the translation it holds. */
  private readonly live = new Map<string, Map<number, number>>();
  /** mm → keys of its CPU TLBs. */
  private readonly cpuOf = new Map<number, Set<string>>();

  constructor(private readonly grid: Grid) {}

  fill(e: TraceEventOf<'tlb-fill'>, page: string): void {
    const key = `${e.mm}|${e.tlb}`;
    let cache = this.live.get(key);
    if (cache === undefined) {
      cache = new Map();
      this.live.set(key, cache);
      if (e.kind === 'cpu') {
        let names = this.cpuOf.get(e.mm);
        if (names === undefined) {
          names = new Set();
          this.cpuOf.set(e.mm, names);
        }
        names.add(key);
      }
    }
    const owner = e.kind === 'cpu' ? `TLB ${e.tlb}` : `IOTLB ${e.tlb}`;
    this.grid.row(page, 'CPU', 'cpu');
    const row = this.grid.row(page, owner, 'tlb');
    cache.set(e.addr - (e.addr % PAGE), row);
    this.grid.set(row, e.step, e.writable ? 2 : 1, frame(e.pfn, e.gen));
  }

  drop(e: TraceEventOf<'tlb-drop'>): void {
    const cache = this.live.get(`${e.mm}|${e.tlb}`);
    const addr = e.addr - (e.addr % PAGE);
    const row = cache?.get(addr);
    if (row === undefined) return;
    cache!.delete(addr);
    this.grid.set(row, e.step, 0, '');
  }

  /** 'tlb-flush': every CPU TLB of the mm. */
  flushCpu(e: TraceEventOf<'tlb-flush'>): void {
    for (const key of this.cpuOf.get(e.mm) ?? []) this.flush(key, e.start, e.end, e.step);
  }

  /** 'iotlb-flush': that IOTLB. */
  flushIotlb(e: TraceEventOf<'iotlb-flush'>): void {
    this.flush(`${e.mm}|${e.tlb}`, e.start, e.end, e.step);
  }

  /** Empties [start, end) of one cache (a page partly in the range goes whole). */
  private flush(key: string, start: number, end: number, step: number): void {
    const cache = this.live.get(key);
    if (cache === undefined) return;
    for (const [addr, row] of cache)
      if (addr + PAGE > start && addr < end) {
        cache.delete(addr);
        this.grid.set(row, step, 0, '');
      }
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
 * True when a device translation (or a TLB's cached one: the states are the same) disagrees
 * with the CPU entry: it maps a frame the CPU entry does not (absent, swap, migration, moved,
 * or freed and reused), or it can write where the CPU cannot. The coherence oracle's rule,
 * read off the grid.
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
  const caches = new Caches(grid);
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
      case 'tlb-fill':
        caches.fill(e, pageOf(e.mm, e.addr));
        break;
      case 'tlb-drop':
        caches.drop(e);
        break;
      case 'tlb-flush':
        caches.flushCpu(e);
        break;
      case 'iotlb-flush':
        caches.flushIotlb(e);
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
    incoherent: disagreeing(rows, 'dev', lastStep),
    stale: disagreeing(rows, 'tlb', lastStep),
    events: timeline.map((t) => [t.step, t.task, t.text] as const),
    violation,
  };
}

function splitKey(key: string): [number, string] {
  const cut = key.indexOf('|');
  return [Number(key.slice(0, cut)), key.slice(cut + 1)];
}

const natural = new Intl.Collator('en', { numeric: true });

/**
 * Pages in address order (mm, then address); per page the CPU row first, then the devices by
 * name, then the TLBs: the CPUs' (in CPU order), then the IOTLBs.
 */
function orderRows(rows: Grid['rows']): GridRow[] {
  const keyed = rows.map((r) => {
    const cut = r.page.indexOf(' ');
    const rank = r.kind === 'cpu' ? 0 : r.kind === 'dev' ? 1 : r.owner.startsWith('TLB ') ? 2 : 3;
    return {
      r,
      mm: Number(r.page.slice(2, cut)),
      addr: Number.parseInt(r.page.slice(cut + 3), 16),
      rank,
    };
  });
  keyed.sort((x, y) => {
    if (x.mm !== y.mm) return x.mm - y.mm;
    if (x.addr !== y.addr) return x.addr - y.addr;
    if (x.rank !== y.rank) return x.rank - y.rank;
    if (x.rank === 1) return x.r.owner < y.r.owner ? -1 : x.r.owner > y.r.owner ? 1 : 0;
    return natural.compare(x.r.owner, y.r.owner);
  });
  return keyed.map((k) => k.r);
}

/**
 * For each row of `kind` (devices, or TLBs), the step ranges where it disagrees with its
 * page's CPU row: both rows change only at their segment starts, so one merged walk of the
 * two runs finds them.
 */
function disagreeing(rows: readonly GridRow[], kind: 'dev' | 'tlb', lastStep: number): RowRange[] {
  const out: RowRange[] = [];
  const cpuRow = new Map<string, GridRow>();
  for (const r of rows) if (r.kind === 'cpu') cpuRow.set(r.page, r);
  for (const [n, r] of rows.entries()) {
    if (r.kind !== kind) continue;
    const cpu = cpuRow.get(r.page)!.segments;
    const own = r.segments;
    let i = 0;
    let j = 0;
    let at = 0;
    let open = -1;
    for (;;) {
      const bad = disagrees(cpu[i]!, own[j]!);
      if (bad && open < 0) open = at;
      else if (!bad && open >= 0) {
        out.push([n, open, at]);
        open = -1;
      }
      const nextCpu = i + 1 < cpu.length ? cpu[i + 1]![0] : Number.POSITIVE_INFINITY;
      const nextOwn = j + 1 < own.length ? own[j + 1]![0] : Number.POSITIVE_INFINITY;
      at = Math.min(nextCpu, nextOwn);
      if (at === Number.POSITIVE_INFINITY) break;
      if (nextCpu === at) i++;
      if (nextOwn === at) j++;
    }
    if (open >= 0) out.push([n, open, lastStep + 1]);
  }
  return out;
}
