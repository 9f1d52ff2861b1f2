import { OdpsimError } from '../../lib/errors.ts';
import { defaultChoice, type Strategy } from '../strategy.ts';
import type { Task } from '../task.ts';

/** A replay whose run does not follow its recording (the world or the code changed). */
export class ReplayDivergence extends OdpsimError {
  override name = 'ReplayDivergence';
}

/**
 * `replay`: follows an explicit list of decisions (task ids, one per point where two or more
 * tasks could run). Strict mode reports a divergence; lenient mode (used by the minimiser)
 * falls back to the non-preemptive choice when the list does not fit.
 */
export class ReplayStrategy implements Strategy {
  readonly kind = 'replay';
  readonly timed = false;
  private readonly decisions: readonly number[];
  private readonly strict: boolean;
  private next = 0;

  constructor(decisions: readonly number[], strict = true) {
    this.decisions = decisions;
    this.strict = strict;
  }

  begin(): void {
    this.next = 0;
  }

  onSpawn(): void {}

  pick(runnable: readonly Task[], prev: Task | null): Task {
    const i = this.next++;
    if (i < this.decisions.length) {
      const id = this.decisions[i]!;
      for (const t of runnable) if (t.id === id) return t;
      if (this.strict) {
        const ids = runnable.map((t) => t.id).join(',');
        throw new ReplayDivergence(
          `replay diverged at decision #${i + 1}: recorded task ${id} is not runnable (runnable: ${ids})`,
        );
      }
    } else if (this.strict) {
      throw new ReplayDivergence(
        `replay diverged: the run needs decision #${i + 1} but the recording ends after ${this.decisions.length}`,
      );
    }
    return defaultChoice(runnable, prev);
  }

  end(): void {
    if (this.strict && this.next !== this.decisions.length) {
      throw new ReplayDivergence(
        `replay diverged: the run finished after ${this.next} of ${this.decisions.length} recorded decisions`,
      );
    }
  }
}
