// Watching one run of a world: statistics, a trace recording, and the kernel for the verdicts.
import type { Kernel } from '../kernel/kernel.ts';
import { TraceRecorder } from '../kernel/trace-export.ts';
import { StatsCollector } from './stats.ts';

/** What was attached to the observed run's kernel. */
export interface Observed {
  readonly kernel: Kernel;
  readonly stats: StatsCollector;
  readonly recorder: TraceRecorder | null;
}

/**
 * An `onKernel` hook that attaches a stats collector (and, with `record`, a trace recorder) to
 * the first kernel it sees only: exploration calls it again for every minimisation replay,
 * which must not be observed (nor slowed down).
 */
export function observeFirstRun(record: boolean): {
  onKernel: (k: Kernel) => void;
  observed: () => Observed | null;
} {
  let first: Observed | null = null;
  return {
    onKernel(k) {
      if (first !== null) return;
      first = {
        kernel: k,
        stats: new StatsCollector(k),
        recorder: record ? new TraceRecorder(k.trace) : null,
      };
    },
    observed: () => first,
  };
}
