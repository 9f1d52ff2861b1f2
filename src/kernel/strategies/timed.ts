import type { Strategy } from '../strategy.ts';
import type { Task } from '../task.ts';

/**
 * `timed`: discrete-event order. The runnable task with the earliest virtual time runs next
 * (ties by spawn order), and timed waits expire in time order; tasks spend time with
 * delay()/sleep(). For latency and throughput studies.
 */
export class TimedStrategy implements Strategy {
  readonly kind = 'timed';
  readonly timed = true;

  begin(): void {}
  onSpawn(): void {}
  end(): void {}

  pick(runnable: readonly Task[], prev: Task | null): Task {
    let best = runnable[0]!;
    for (let i = 1; i < runnable.length; i++) {
      const t = runnable[i]!;
      if (t.time < best.time || (t.time === best.time && t.id < best.id)) best = t;
    }
    // Keep running the previous task while it is as early as the best, to avoid needless switches.
    if (prev !== null && prev !== best && prev.time === best.time && runnable.includes(prev))
      return prev;
    return best;
  }
}
