/**
 * The shapes `--json` prints, one JSON document on stdout per command. Every report carries
 * `command`; `elapsedMs` is the only field that differs between two identical commands.
 * @module
 */
import type { DeviceCounters } from '../check/counters.ts';
import type { CoverageReport } from '../check/coverage.ts';
import type { ExploreResult } from '../check/explore.ts';
import type { MutantInfo } from '../check/mutants.ts';
import type { ScenarioFinding, ScenarioParam } from '../scenarios/scenario.ts';
import type { FilesJson } from './outputs.ts';
import type { OracleVerdict, RunStats } from './stats.ts';
import type { TimelineEntry } from './timeline.ts';

/** What ran: the scenario, its resolved parameters and the mutants enabled. */
export interface WorldJson {
  readonly scenario: string;
  readonly params: Readonly<Record<string, number>>;
  readonly mutants: readonly string[];
}

/** The bug that ended a run. */
export interface BugJson {
  /** The rule broken (`coherence`, `use-after-free`, `deadlock`, `data`, ...). */
  readonly rule: string;
  /** The task it happened in, or null (a quiescence check). */
  readonly task: string | null;
  /** The full message (`BUG <rule> in task <t> holding [...]: <detail>`). */
  readonly message: string;
}

/** `odpsim run --json`. */
export interface RunJson extends WorldJson {
  readonly command: 'run';
  readonly strategy: 'timed';
  readonly seed: number;
  /** True when the run finished and every check passed. */
  readonly ok: boolean;
  readonly stats: RunStats;
  readonly oracles: readonly OracleVerdict[];
  /** What the scenario reports seeing (not verdicts), in order. */
  readonly observations: readonly string[];
  /** Each device's own counters at the end (mlx5's ODP statistics), in creation order. */
  readonly counters: readonly DeviceCounters[];
  /** Virtual time charged by the cost model, by cost name (those charged at all), in table order. */
  readonly costs: Readonly<Record<string, { readonly count: number; readonly ns: number }>>;
  /** The bug, with the token that replays it (`odpsim replay <token>`), or null. */
  readonly failure: (BugJson & { readonly token: string }) | null;
  /** True when the run stopped at --max-steps before the world finished (not a bug). */
  readonly stoppedAtLimit: boolean;
  /** Files written (`--trace`, `--log`, `--html`), each null when not written. */
  readonly files: FilesJson;
  readonly elapsedMs: number;
}

/** `odpsim explore --json`. */
export interface ExploreJson extends WorldJson {
  readonly command: 'explore';
  readonly options: {
    readonly strategy: 'random' | 'pct' | 'dfs';
    readonly runs: number;
    readonly seed: number;
    readonly depth: number;
    readonly preemptions: number;
    /** The step limit of each run (--max-steps, or sized from the world). */
    readonly maxSteps: number;
    /** --start-run: the first run index of the whole range (before sharding). */
    readonly startRun: number;
    /** --shard i/n, 1-based; null when not sharded. */
    readonly shard: { readonly index: number; readonly count: number } | null;
    /** Threads the runs were spread over. */
    readonly jobs: number;
    /** The timeline's detail: protocol events, or every event. */
    readonly timeline: 'protocol' | 'full';
  };
  /** True when no violation was found. */
  readonly ok: boolean;
  /** Totals over the runs explored: the contiguous range [firstRun, nextRun). */
  readonly result: {
    readonly firstRun: number;
    readonly runs: number;
    /** Where to resume (--start-run) after an interruption; firstRun + runs. */
    readonly nextRun: number;
    /** Runs stopped at the step limit (checked only that far; not a bug). */
    readonly stepLimited: number;
    readonly steps: number;
    readonly contextSwitches: number;
    readonly preemptions: number;
    readonly stoppedBy: ExploreResult['stoppedBy'];
    /** dfs only: schedules covered and whether the bounded space was exhausted. */
    readonly dfs: { readonly schedules: number; readonly exhausted: boolean } | null;
  };
  /** The first violation, minimised, with its replay token and timeline; or null. */
  readonly failure:
    | (BugJson & {
        readonly token: string;
        /** Index of the failing run (numbered from 0, as --start-run). */
        readonly run: number;
        /** False for a violation reported without minimisation (an interrupted exploration). */
        readonly minimised: boolean;
        /** Size of the minimised schedule, and of the original one. */
        readonly steps: number;
        readonly preemptions: number;
        readonly original: { readonly steps: number; readonly preemptions: number };
        /**
         * A generated scenario's world (what the failing run drew, less the operations
         * minimisation left out), a line per part; empty for a fixed scenario.
         */
        readonly world: readonly string[];
        readonly timeline: readonly TimelineEntry[];
      })
    | null;
  /**
   * Interrupted explorations only: a violation seen in a run beyond the explored prefix (runs
   * before it were not all done), unminimised, with its token; or null.
   */
  readonly unconfirmedFailure: ExploreJson['failure'];
  /** Files written (`--trace`, `--log`, `--html`; only when there is a violation), or null. */
  readonly files: FilesJson;
  /**
   * `--coverage`: over the runs explored ([firstRun, nextRun)), each section's items reached
   * (with the runs that reached each) and missing; null without the option. Sections:
   * `callbacks`, notifier callbacks as `client callback` or `client callback EVENT`; `paths`,
   * mm paths by kernel function name; `races`, pairs `a b` of paths one of which began while
   * the other ran in another task of the same machine.
   */
  readonly coverage: CoverageReport | null;
  readonly elapsedMs: number;
}

/** `odpsim sweep --json`: one row per combination of parameter values and strategy. */
export interface SweepJson {
  readonly command: 'sweep';
  readonly scenario: string;
  readonly mutants: readonly string[];
  /** Runs per combination, and the exploration seed. */
  readonly runs: number;
  readonly seed: number;
  /** Combinations asked for (rows may be fewer after --fail-fast or Ctrl-C). */
  readonly combinations: number;
  readonly rows: readonly {
    /** The swept parameters' values (the others at their defaults). */
    readonly params: Readonly<Record<string, number>>;
    readonly strategy: 'random' | 'pct' | 'dfs';
    /** Runs explored (to the violation, inclusive). */
    readonly runs: number;
    readonly steps: number;
    /** Runs stopped at the step limit (checked only that far). */
    readonly stepLimited: number;
    readonly outcome: 'clean' | 'violation' | 'interrupted';
    readonly rule: string | null;
    /** Index of the failing run, and the minimised schedule's token; null when clean. */
    readonly run: number | null;
    readonly token: string | null;
    readonly elapsedMs: number;
  }[];
  readonly elapsedMs: number;
}

/** `odpsim replay --json`. */
export interface ReplayJson extends WorldJson {
  readonly command: 'replay';
  readonly token: string;
  /** The strategy and run seed that found the schedule. */
  readonly strategy: string;
  readonly seed: number;
  /** True when the replay ran clean (the failure did not reproduce). */
  readonly ok: boolean;
  readonly stats: RunStats;
  readonly oracles: readonly OracleVerdict[];
  /** Each device's own counters at the end (see RunJson). */
  readonly counters: readonly DeviceCounters[];
  readonly failure: BugJson | null;
  readonly timeline: readonly TimelineEntry[];
  /** Files written (`--trace`, `--log`, `--html`), each null when not written. */
  readonly files: FilesJson;
  readonly elapsedMs: number;
}

/** `odpsim list --json`. */
export interface ListJson {
  readonly command: 'list';
  /** The scenario `odpsim run` runs when none is named. */
  readonly defaultScenario: string;
  readonly scenarios: readonly {
    readonly name: string;
    readonly description: string;
    readonly params: readonly ScenarioParam[];
    /** Set when the scenario at its defaults reproduces a documented kernel bug. */
    readonly finding: ScenarioFinding | null;
  }[];
  /** Each mutant, with the scenarios that reach its code (explore refuses the others). */
  readonly mutants: readonly (MutantInfo & { readonly scenarios: readonly string[] })[];
}
