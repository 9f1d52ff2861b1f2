import { Prng } from '../../lib/prng.ts';
import type { Strategy } from '../strategy.ts';
import type { Task } from '../task.ts';

/**
 * `pct`: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010). Each task gets a
 * random priority of at least `depth`; the highest-priority runnable task runs; at d−1 random
 * steps among the first `steps` the running task drops to priority d−1−i. A bug of depth d is
 * found with probability at least 1/(n·k^(d−1)) per run.
 */
export class PctStrategy implements Strategy {
  readonly kind = 'pct';
  readonly timed = false;
  private readonly prng: Prng;
  private readonly depth: number;
  private readonly steps: number;
  private changePoints: number[] = [];
  private nextChange = 0;

  /** `steps` is the expected run length k, from which the change points are drawn. */
  constructor(seed: number, depth: number, steps: number) {
    this.prng = new Prng(seed);
    this.depth = Math.max(1, depth);
    this.steps = Math.max(1, steps);
  }

  begin(): void {
    const points: number[] = [];
    for (let i = 0; i < this.depth - 1; i++) points.push(1 + this.prng.below(this.steps));
    this.changePoints = points;
    this.nextChange = 0;
  }

  onSpawn(task: Task): void {
    task.priority = this.depth + this.prng.below(0x40000000);
  }

  end(): void {}

  pick(runnable: readonly Task[], prev: Task | null, step: number): Task {
    const points = this.changePoints;
    while (this.nextChange < points.length) {
      const at = points[this.nextChange]!;
      if (at > step) break;
      // The task that ran at the change point drops below every initial priority.
      if (prev !== null) prev.priority = this.depth - 1 - this.nextChange;
      this.nextChange++;
    }
    let best = runnable[0]!;
    for (let i = 1; i < runnable.length; i++) {
      const t = runnable[i]!;
      if (t.priority > best.priority) best = t;
    }
    return best;
  }
}
