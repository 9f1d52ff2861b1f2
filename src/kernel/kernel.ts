import { CostModel, type CostOverrides } from '../cost/model.ts';
import { Errno } from '../lib/errors.ts';
import { Prng } from '../lib/prng.ts';
import { KernelBug, type KernelRule, setBugSink } from './bug.ts';
import { Lockdep } from './lockdep.ts';
import { ReplayDivergence } from './strategies/replay.ts';
import { defaultChoice, type Strategy } from './strategy.ts';
import { BLOCKED, type Co, DONE, RUNNABLE, Task, type Waitable } from './task.ts';
import { TraceBus } from './trace.ts';

/** What happens when a run reaches its step limit. */
export type StepLimitPolicy = 'fail' | 'pass';

/** Options of one simulated kernel (one run of one world). */
export interface KernelOptions {
  /** The strategy choosing among runnable tasks; defaults to running the first runnable. */
  readonly strategy?: Strategy;
  /** Seed of the world's own PRNG (`kernel.prng`), for scenario data. Default 1. */
  readonly seed?: number;
  /** Steps before the run is stopped. Default 1,000,000. */
  readonly maxSteps?: number;
  /** Fail the run at the step limit (default) or stop it and pass. */
  readonly onStepLimit?: StepLimitPolicy;
  /** Mutants enabled in this world (see the mutant registry in check/). */
  readonly mutants?: Iterable<string>;
  /** Record the mutant sites the run reaches even with no mutant enabled (see mutantSites). */
  readonly recordMutantSites?: boolean;
  /** Cost table overrides (see cost/table.ts); the costs that vary are drawn per `seed`. */
  readonly costs?: CostOverrides;
}

/** The outcome of {@link Kernel.run}. */
export interface RunResult {
  /** True when every task finished and every quiescence check passed. */
  readonly ok: boolean;
  /** The bug that ended the run, if any; an ordinary exception is wrapped as rule `exception`. */
  readonly bug: KernelBug | null;
  /** Steps executed (generator resumptions). */
  readonly steps: number;
  /** Changes of the running task. */
  readonly switches: number;
  /** Switches away from a task that could have gone on. */
  readonly preemptions: number;
  /** Virtual time at the end, ns. */
  readonly time: number;
  /** Ids of the tasks chosen at each point where two or more could run. */
  readonly decisions: readonly number[];
  /** True when the run stopped at the step limit under the 'pass' policy. */
  readonly stoppedAtLimit: boolean;
}

/** Steps between two calls of {@link Kernel.tick}. */
export const TICK_STEPS = 1 << 16;

let active: Kernel | null = null;

/** The kernel whose run is executing. Primitives use it; outside a run it is an error. */
export function kernel(): Kernel {
  if (active === null)
    throw new Errno('EINVAL', 'no simulated kernel is running: call primitives from a task');
  return active;
}

/** The running task (`current`). */
export function current(): Task {
  const t = kernel().current;
  if (t === null)
    throw new Errno('EINVAL', 'no task is running (quiescence checks have no current task)');
  return t;
}

/** Raises a kernel bug at the current site (see {@link Kernel.bug}); narrows like `throw`. */
export function bug(rule: KernelRule, detail: string): never {
  return kernel().bug(rule, detail);
}

const firstRunnable: Strategy = {
  kind: 'replay',
  timed: false,
  begin() {},
  onSpawn() {},
  pick: defaultChoice,
  end() {},
};

/**
 * One simulated kernel: its tasks, scheduler, virtual clock, lockdep state and trace bus.
 * A world is built on a fresh kernel (spawn tasks, set up state), then {@link run} runs it.
 */
export class Kernel {
  readonly trace: TraceBus;
  /** The world's PRNG for scenario data, seeded from the options (never a real random source). */
  readonly prng: Prng;
  readonly seed: number;
  readonly strategy: Strategy;
  readonly lockdep = new Lockdep();
  readonly maxSteps: number;
  readonly onStepLimit: StepLimitPolicy;
  readonly mutants: ReadonlySet<string>;
  /** The virtual time operations are charged (cost/model.ts). */
  readonly costs: CostModel;
  /** Every task spawned, by id. */
  readonly tasks: Task[] = [];
  /** The task being stepped, or null between steps and during quiescence checks. */
  current: Task | null = null;
  steps = 0;
  switches = 0;
  preemptions = 0;
  /** Virtual time, ns: the latest time any task has reached. */
  now = 0;
  private readonly runnable: Task[] = [];
  private readonly timers: Task[] = [];
  private readonly decisions: number[] = [];
  private readonly quiesceChecks: (() => void)[] = [];
  private readonly stuckChecks: ((blocked: readonly Task[]) => void)[] = [];
  private live = 0;
  private prev: Task | null = null;
  /** The first bug raised in this run: the one reported, whatever the model did with it. */
  private firstBug: KernelBug | null = null;

  constructor(options: KernelOptions = {}) {
    this.seed = options.seed ?? 1;
    this.prng = new Prng(this.seed ^ 0x5bd1e995);
    this.strategy = options.strategy ?? firstRunnable;
    this.maxSteps = options.maxSteps ?? 1_000_000;
    this.onStepLimit = options.onStepLimit ?? 'fail';
    this.mutants = new Set(options.mutants ?? []);
    this.costs = new CostModel(this.seed, options.costs);
    this.mutantSites =
      this.mutants.size > 0 || options.recordMutantSites === true ? new Set() : null;
    this.trace = new TraceBus(this);
  }

  /**
   * Mutant sites this run reached (recorded only when some mutant is enabled or
   * {@link KernelOptions.recordMutantSites} is set): how the CLI tells a mutant the world cannot
   * reach. A site asks before its other conditions, so reaching its code is enough.
   */
  readonly mutantSites: Set<string> | null;

  /**
   * Called every {@link TICK_STEPS} steps with the step count: how a long run shows progress
   * (the CLI's status line). It must not touch the world.
   */
  tick: ((steps: number) => void) | null = null;

  /** True when the named mutant is enabled in this world. */
  mutant(name: string): boolean {
    if (this.mutantSites === null) return false;
    this.mutantSites.add(name);
    return this.mutants.has(name);
  }

  /** kthread_run(): creates a runnable task running `body`. */
  spawn<T>(name: string, body: () => Co<T>): Task<T> {
    const parent = this.current;
    const task = new Task<T>(this.tasks.length, name, body(), parent?.time ?? this.now);
    this.tasks.push(task as Task);
    this.runnable.push(task as Task);
    this.live++;
    this.strategy.onSpawn(task as Task);
    if (this.trace.on) this.trace.emit('spawn', { id: task.id, name });
    return task;
  }

  /** Registers a check run when every task has finished (leak checks and the like). */
  onQuiescence(check: () => void): void {
    this.quiesceChecks.push(check);
  }

  /**
   * Registers a check run when no task can run but some wait, before the deadlock is reported:
   * it may raise a bug that names the cause (an oracle that knows why a wait can never end).
   */
  onStuck(check: (blocked: readonly Task[]) => void): void {
    this.stuckChecks.push(check);
  }

  /** The running task's id, or -1 (for trace stamps). */
  currentId(): number {
    return this.current?.id ?? -1;
  }

  /** Raises a kernel bug at the current site: the running task and the locks it holds. */
  bug(rule: KernelRule, detail: string): never {
    const t = this.current;
    throw new KernelBug(rule, detail, { task: t?.name ?? null, held: t?.heldNames() ?? [] });
  }

  /** @internal Marks `task` blocked on `on`; the caller then yields. */
  block(task: Task, on: Waitable, deadline = -1): void {
    task.state = BLOCKED;
    task.waitingOn = on;
    task.deadline = deadline;
    task.timedOut = false;
    const i = this.runnable.indexOf(task);
    if (i >= 0) this.runnable.splice(i, 1);
    if (deadline >= 0) this.timers.push(task);
    if (this.trace.on) this.trace.emit('sleep', { on: on.label });
  }

  /** @internal Makes a blocked task runnable again; its time catches up with the waker's. */
  wake(task: Task): void {
    if (task.state !== BLOCKED) return;
    const on = task.waitingOn;
    this.unblock(task);
    const waker = this.current;
    if (waker !== null && task.time < waker.time) task.time = waker.time;
    if (this.trace.on) this.trace.emit('wake', { woken: task.id, on: on?.label ?? '' });
  }

  private unblock(task: Task): void {
    task.state = RUNNABLE;
    task.waitingOn = null;
    if (task.deadline >= 0) {
      this.timers.splice(this.timers.indexOf(task), 1);
      task.deadline = -1;
    }
    this.runnable.push(task);
  }

  /** Runs the world until every task has finished, a bug fires, or the step limit is hit. */
  run(): RunResult {
    const outer = active;
    active = this;
    let bug: KernelBug | null = null;
    let stoppedAtLimit = false;
    const outerSink = setBugSink((b) => {
      this.firstBug ??= b;
    });
    this.strategy.begin();
    try {
      stoppedAtLimit = this.loop();
      if (!stoppedAtLimit) this.quiesce();
    } catch (e) {
      if (e instanceof ReplayDivergence) throw e;
      bug = this.firstBug ?? this.asBug(e);
    } finally {
      active = outer;
      setBugSink(outerSink);
    }
    bug ??= this.firstBug;
    this.strategy.end();
    if (bug !== null && this.trace.on)
      this.trace.emit('bug', { rule: bug.rule, message: bug.message });
    this.current = null;
    return {
      ok: bug === null,
      bug,
      steps: this.steps,
      switches: this.switches,
      preemptions: this.preemptions,
      time: this.now,
      decisions: this.decisions,
      stoppedAtLimit,
    };
  }

  /** The scheduler loop; returns true when stopped at the step limit under 'pass'. */
  private loop(): boolean {
    const runnable = this.runnable;
    const strategy = this.strategy;
    let checkpoint = Math.min(this.maxSteps, this.steps + TICK_STEPS);
    for (;;) {
      const n = runnable.length;
      if (this.timers.length > 0 && (n === 0 || strategy.timed) && this.fireTimer()) continue;
      if (n === 0) {
        if (this.live > 0) this.deadlock();
        return false;
      }
      // One comparison per step serves both the step limit and the tick.
      if (this.steps >= checkpoint) {
        if (this.steps >= this.maxSteps) {
          if (this.onStepLimit === 'pass') return true;
          this.current = this.prev;
          this.bug(
            'step-limit',
            `run stopped at its step limit of ${this.maxSteps} steps (maxSteps; --max-steps on the command line): a livelock, a spinning task, or a world that needs a larger limit`,
          );
        }
        this.tick?.(this.steps);
        checkpoint = Math.min(this.maxSteps, this.steps + TICK_STEPS);
      }
      const prev = this.prev;
      let t: Task;
      if (n === 1) t = runnable[0]!;
      else {
        t = strategy.pick(runnable, prev, this.steps);
        this.decisions.push(t.id);
      }
      if (t !== prev) this.switchTo(t, prev);
      this.current = t;
      if (t.time < this.now) t.time = this.now;
      else this.now = t.time;
      this.steps++;
      const r = t.gen.next();
      // A bug the task's own code caught and swallowed still ends the run, at this step.
      if (this.firstBug !== null) throw this.firstBug;
      if (r.done) this.finish(t, r.value);
      this.prev = t;
    }
  }

  private switchTo(t: Task, prev: Task | null): void {
    if (prev !== null) this.switches++;
    const preempted = prev !== null && prev.state === RUNNABLE;
    if (preempted) this.preemptions++;
    if (this.trace.on) {
      this.current = t;
      this.trace.emit('switch', { from: prev?.id ?? -1, preempted });
    }
  }

  /** Fires the earliest timed wait if it is due; returns true when one fired. */
  private fireTimer(): boolean {
    let first = this.timers[0]!;
    for (const t of this.timers) if (t.deadline < first.deadline) first = t;
    if (this.strategy.timed && this.runnable.length > 0) {
      let soonest = Number.POSITIVE_INFINITY;
      for (const t of this.runnable) soonest = Math.min(soonest, t.time);
      if (first.deadline > soonest) return false;
    }
    const deadline = first.deadline;
    this.unblock(first);
    first.timedOut = true;
    if (first.time < deadline) first.time = deadline;
    return true;
  }

  private finish(t: Task, value: unknown): void {
    t.state = DONE;
    t.result = value;
    this.live--;
    this.runnable.splice(this.runnable.indexOf(t), 1);
    if (t.held.length > 0)
      this.bug('exit-holding-lock', `task ${t.name} returned holding ${t.heldNames().join(', ')}`);
    if (t.srcuDepth > 0)
      this.bug(
        'exit-in-srcu',
        `task ${t.name} returned inside ${t.srcuDepth} SRCU read section(s)`,
      );
    if (t.atomicDepth > 0 || t.nonBlockDepth > 0)
      this.bug('exit-in-atomic', `task ${t.name} returned in atomic or non-blocking context`);
    if (this.trace.on) this.trace.emit('exit', { ok: true });
    if (t.joiners !== null) for (const j of t.joiners) this.wake(j);
  }

  private quiesce(): void {
    this.current = null;
    for (const check of this.quiesceChecks) check();
  }

  private deadlock(): never {
    const blocked = this.tasks.filter((t) => t.state === BLOCKED);
    const lines = blocked.map((t) => {
      const on = t.waitingOn;
      const holders = on?.holders().map((h) => h.name) ?? [];
      const by = holders.length > 0 ? ` held by ${holders.join(', ')}` : '';
      return `${t.name} waits on ${on?.label ?? '?'}${by}`;
    });
    this.current = blocked[0] ?? null;
    for (const check of this.stuckChecks) check(blocked);
    this.bug('deadlock', `no task can run: ${lines.join('; ')}`);
  }

  private asBug(e: unknown): KernelBug {
    if (e instanceof KernelBug) return e;
    const t = this.current;
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    const bug = new KernelBug('exception', `uncaught ${what}`, {
      task: t?.name ?? null,
      held: t?.heldNames() ?? [],
    });
    (bug as { cause?: unknown }).cause = e;
    return bug;
  }
}
