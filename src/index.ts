/**
 * odpsim's public API: everything a world of your own needs, and the explorer that checks it.
 * Anything not exported here is internal. The README's "Use odpsim as a library" and
 * examples/custom-world.ts show how the pieces fit.
 * @packageDocumentation
 */

// The memory manager, notifiers, drivers and oracles.
export * from './api-mm.ts';
// Exploration, and what the runs of an exploration covered.
export {
  Coverage,
  type CoverageData,
  type CoverageReport,
  type CoverageSection,
  type CoverageUniverse,
  pairItem,
  pairUniverse,
} from './check/coverage.ts';
export {
  type ExploreFailure,
  type ExploreOptions,
  type ExploreResult,
  explore,
  type ReplayResult,
  replay,
  runSeed,
} from './check/explore.ts';
export { decodeToken, encodeToken, type ReplayRecord } from './check/replay-token.ts';
export type { WorldBuilder } from './check/run-world.ts';
// The cost model: the virtual time each modelled operation spends (cost/table.ts).
export { charge, spend } from './cost/charge.ts';
export { CostModel, type CostOverrides, type CostTally, resolveCosts } from './cost/model.ts';
export { addCostAssignment, parseCostFile, parseDuration } from './cost/parse.ts';
export {
  COST_NAMES,
  COSTS,
  type CostEntry,
  type CostName,
  type CostQuantiles,
  type CostUnit,
} from './cost/table.ts';
// The simulated-kernel runtime.
export { type BugSite, isKernelBug, KernelBug, type KernelRule } from './kernel/bug.ts';
export {
  canSleep,
  delay,
  join,
  mightSleep,
  nonBlockEnd,
  nonBlockStart,
  preempt,
  preemptDisable,
  preemptEnable,
  sleep,
} from './kernel/context.ts';
export {
  current,
  Kernel,
  type KernelOptions,
  kernel,
  type RunResult,
  type StepLimitPolicy,
} from './kernel/kernel.ts';
export { DfsStrategy } from './kernel/strategies/dfs.ts';
export { PctStrategy } from './kernel/strategies/pct.ts';
export { RandomStrategy } from './kernel/strategies/random.ts';
export { ReplayDivergence, ReplayStrategy } from './kernel/strategies/replay.ts';
export { TimedStrategy } from './kernel/strategies/timed.ts';
export type { Strategy, StrategyKind } from './kernel/strategy.ts';
export { Atomic } from './kernel/sync/atomic.ts';
export { Completion } from './kernel/sync/completion.ts';
export { Mutex } from './kernel/sync/mutex.ts';
export { RwSemaphore } from './kernel/sync/rwsem.ts';
export { SpinLock } from './kernel/sync/spinlock.ts';
export { Srcu } from './kernel/sync/srcu.ts';
export { WaitQueue } from './kernel/sync/wait-queue.ts';
export type { Co, HeldLock, LockIdentity, Task, Waitable } from './kernel/task.ts';
export type {
  TraceBus,
  TraceEvent,
  TraceEventMap,
  TraceEventOf,
  TraceHeader,
  TraceListener,
} from './kernel/trace.ts';
export {
  type ChromeEvent,
  type ChromeTrace,
  type ChromeTraceClock,
  type ChromeTraceOptions,
  formatEvent,
  TraceRecorder,
  toChromeTrace,
} from './kernel/trace-export.ts';
export {
  checkIndex,
  ERRNO_CODES,
  Errno,
  type ErrnoCode,
  isErrno,
  isOdpsimError,
  OdpsimError,
} from './lib/errors.ts';
export { IntervalTree, IntervalTreeNode } from './lib/interval-tree.ts';
export { Prng } from './lib/prng.ts';
// Built-in scenarios (what `odpsim run|explore` runs).
export {
  DEFAULT_SCENARIO,
  findScenario,
  resolveParams,
  SCENARIOS,
  type Scenario,
  type ScenarioParam,
  type ScenarioParams,
} from './scenarios/index.ts';
// The studies of `odpsim study`, and their plots.
export type { ChartAxis, ChartSeries, ChartSpec } from './study/chart.ts';
export { studyDesigns } from './study/designs-study.ts';
export { studyFirstTouch } from './study/first-touch.ts';
export { STUDIES, type StudyEntry } from './study/index.ts';
export { studyNpf } from './study/npf.ts';
export { studyOvercommit } from './study/overcommit.ts';
export { renderChartSvg, type StudyPage, studyPageHtml, writeStudyPlots } from './study/plot.ts';
export { studyRnr } from './study/rnr.ts';
export type { StudyOptions, StudyResult, StudyTable } from './study/study.ts';
export { VERSION } from './version.ts';
