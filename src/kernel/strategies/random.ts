import { Prng } from '../../lib/prng.ts';
import type { Strategy } from '../strategy.ts';
import type { Task } from '../task.ts';

/** `random`: a uniform, seeded choice among the runnable tasks at every step. */
export class RandomStrategy implements Strategy {
  readonly kind = 'random';
  readonly timed = false;
  private readonly prng: Prng;

  constructor(seed: number) {
    this.prng = new Prng(seed);
  }

  begin(): void {}
  onSpawn(): void {}
  end(): void {}

  pick(runnable: readonly Task[]): Task {
    return runnable[this.prng.below(runnable.length)]!;
  }
}
