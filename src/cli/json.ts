/**
 * The shapes `--json` prints, one JSON document on stdout per command. Every report carries
 * `command`; `elapsedMs` is the only field that differs between two identical commands.
 * @module
 */
import type { DeviceCounters } from '../check/counters.ts';
import type { ExploreResult } from '../check/explore.ts';
import type { MutantInfo } from '../check/mutants.ts';
import type { ScenarioFinding, ScenarioParam } from '../scenarios/scenario.ts';
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
  /** The bug, with the token that replays it (`odpsim replay <token>`), or null. */
  readonly failure: (BugJson & { readonly token: string }) | null;
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
    readonly maxSteps: number;
  };
  /** True when no violation was found. */
  readonly ok: boolean;
  /** Totals over the runs explored. */
  readonly result: {
    readonly runs: number;
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
        /** Index of the failing run. */
        readonly run: number;
        /** Size of the minimised schedule, and of the original one. */
        readonly steps: number;
        readonly preemptions: number;
        readonly original: { readonly steps: number; readonly preemptions: number };
        readonly timeline: readonly TimelineEntry[];
      })
    | null;
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
  /** Files written (`--trace`, `--log`), or null. */
  readonly files: { readonly trace: string | null; readonly log: string | null };
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
  readonly mutants: readonly MutantInfo[];
}
