/**
 * What an exploration exercised: which notifier callbacks each client kind had called, for
 * which event (`mn-callback`); which mm paths ran (`mm-path`); and which pairs of mm paths
 * raced, one beginning while the other was running in another task of the same machine. Each
 * item counts the runs that reached it. The data is plain (worker threads send it back) and
 * adds up with {@link Coverage.merge}; {@link Coverage.report} sets it against a universe.
 * @module
 */
import type { Kernel } from '../kernel/kernel.ts';
import type { TraceEvent } from '../kernel/trace.ts';
import '../mm/events.ts';

/** Coverage as plain data: for each item, the runs that reached it. */
export interface CoverageData {
  readonly runs: number;
  /** `client callback` or `client callback EVENT` (mnCallbackItem() in mm/mmu-notifier-clients.ts). */
  readonly callbacks: Readonly<Record<string, number>>;
  /** mm paths by kernel function name. */
  readonly paths: Readonly<Record<string, number>>;
  /** Racing pairs, `a b` with a <= b (see {@link pairItem}). */
  readonly races: Readonly<Record<string, number>>;
}

/** Everything that could be reached: the item lists a report counts against. */
export interface CoverageUniverse {
  readonly callbacks: readonly string[];
  /** What an item needs beyond correct code (a mutant, a setting, a design), or null. */
  readonly condition?: (item: string) => string | null;
  /** Racing pairs are every unordered pair of these, each path with itself included. */
  readonly paths: readonly string[];
}

/** One section of a report. */
export interface CoverageSection {
  /** Items in the universe. */
  readonly total: number;
  /** Items of the universe reached, in its order, with the runs that reached each. */
  readonly reached: Readonly<Record<string, number>>;
  /** Items of the universe never reached, in its order (those of `conditional` too). */
  readonly missing: readonly string[];
  /** Of the missing items, those the universe says need a condition, with it. */
  readonly conditional: Readonly<Record<string, string>>;
  /** Items reached that the universe does not list (a client that names no kind, say). */
  readonly outside: Readonly<Record<string, number>>;
}

/** A coverage report: the runs counted and each section. */
export interface CoverageReport {
  readonly runs: number;
  readonly callbacks: CoverageSection;
  readonly paths: CoverageSection;
  readonly races: CoverageSection;
}

/** The item of a racing pair: the two names in order, so {a, b} and {b, a} are one item. */
export function pairItem(a: string, b: string): string {
  return a <= b ? `${a} ${b}` : `${b} ${a}`;
}

/** Every pair item of `paths`, each with itself included. */
export function pairUniverse(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < paths.length; i++)
    for (let j = i; j < paths.length; j++) out.push(pairItem(paths[i]!, paths[j]!));
  return out;
}

/** A reached item: the runs that reached it and the last run that did. */
interface Hit {
  runs: number;
  last: number;
}

/** A path running now: in which task, on which machine. */
interface Active {
  readonly task: number;
  readonly fn: string;
  readonly machine: number;
}

/** Collects coverage over the runs whose kernels it is attached to. */
export class Coverage {
  private runs = 0;
  private readonly callbacks = new Map<string, Hit>();
  private readonly paths = new Map<string, Hit>();
  private readonly races = new Map<string, Hit>();
  private active: Active[] = [];

  /** Coverage from plain data (another thread's {@link data}). */
  static from(data: CoverageData): Coverage {
    const c = new Coverage();
    c.merge(data);
    return c;
  }

  /**
   * Subscribes to a fresh kernel's trace bus, before its world is built: one attach per run.
   * Returns the unsubscribe function.
   */
  attach(kernel: Kernel): () => void {
    const run = ++this.runs;
    this.active = [];
    return kernel.trace.subscribe((e) => this.on(e, run));
  }

  private on(e: TraceEvent, run: number): void {
    if (e.type === 'mn-callback') {
      const item =
        e.event === null ? `${e.client} ${e.callback}` : `${e.client} ${e.callback} ${e.event}`;
      hit(this.callbacks, item, run);
    } else if (e.type === 'mm-path') {
      if (e.phase === 'begin') this.begin(e.task, e.fn, e.machine, run);
      else this.end(e.task, e.fn);
    }
  }

  private begin(task: number, fn: string, machine: number, run: number): void {
    hit(this.paths, fn, run);
    for (const a of this.active)
      if (a.task !== task && a.machine === machine) hit(this.races, pairItem(fn, a.fn), run);
    this.active.push({ task, fn, machine });
  }

  private end(task: number, fn: string): void {
    // Paths nest within a task: the innermost of that name is the one ending.
    for (let i = this.active.length - 1; i >= 0; i--) {
      const a = this.active[i]!;
      if (a.task === task && a.fn === fn) {
        this.active.splice(i, 1);
        return;
      }
    }
  }

  /** Adds the runs of `other` (runs are distinct: counts add up). */
  merge(other: Coverage | CoverageData): void {
    const d = other instanceof Coverage ? other.data() : other;
    this.runs += d.runs;
    add(this.callbacks, d.callbacks);
    add(this.paths, d.paths);
    add(this.races, d.races);
  }

  /** The coverage as plain, structured-clonable data. */
  data(): CoverageData {
    return {
      runs: this.runs,
      callbacks: counts(this.callbacks),
      paths: counts(this.paths),
      races: counts(this.races),
    };
  }

  /** Reached and missing items of each section against `universe`. */
  report(universe: CoverageUniverse): CoverageReport {
    return {
      runs: this.runs,
      callbacks: section(this.callbacks, universe.callbacks, universe.condition),
      paths: section(this.paths, universe.paths, universe.condition),
      races: section(this.races, pairUniverse(universe.paths)),
    };
  }
}

function hit(m: Map<string, Hit>, item: string, run: number): void {
  const h = m.get(item);
  if (h === undefined) m.set(item, { runs: 1, last: run });
  else if (h.last !== run) {
    h.runs++;
    h.last = run;
  }
}

function add(m: Map<string, Hit>, from: Readonly<Record<string, number>>): void {
  for (const [item, runs] of Object.entries(from)) {
    const h = m.get(item);
    // last -1: no run of this collector's own numbering, so attached runs count afresh.
    if (h === undefined) m.set(item, { runs, last: -1 });
    else h.runs += runs;
  }
}

function counts(m: Map<string, Hit>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of [...m.keys()].sort()) out[item] = m.get(item)!.runs;
  return out;
}

function section(
  m: Map<string, Hit>,
  universe: readonly string[],
  condition: (item: string) => string | null = () => null,
): CoverageSection {
  const reached: Record<string, number> = {};
  const missing: string[] = [];
  const conditional: Record<string, string> = {};
  const listed = new Set(universe);
  for (const item of universe) {
    const h = m.get(item);
    if (h !== undefined) {
      reached[item] = h.runs;
      continue;
    }
    missing.push(item);
    const c = condition(item);
    if (c !== null) conditional[item] = c;
  }
  const outside: Record<string, number> = {};
  for (const item of [...m.keys()].sort()) if (!listed.has(item)) outside[item] = m.get(item)!.runs;
  return { total: universe.length, reached, missing, conditional, outside };
}
