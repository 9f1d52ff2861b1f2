import type { Strategy } from '../strategy.ts';
import type { Task } from '../task.ts';
import { ReplayDivergence } from './replay.ts';

/** One choice point of the current schedule. */
interface Frame {
  /** Candidate task ids, the non-preemptive choice first. */
  readonly options: readonly number[];
  /** Index of the option taken. */
  idx: number;
  /** Id of the previous task if it could have gone on (then any other option preempts it), else -1. */
  readonly prevId: number;
  /** Preemptions spent before this point. */
  readonly preemptionsBefore: number;
}

/**
 * `dfs`: systematic, stateless enumeration of schedules under a preemption bound (iterative
 * context bounding, Musuvathi and Qadeer, PLDI 2007). Each run replays the current prefix of
 * choices and takes the non-preemptive choice beyond it; {@link advance} moves to the next
 * schedule. With the bound, small worlds are explored exhaustively.
 */
export class DfsStrategy implements Strategy {
  readonly kind = 'dfs';
  readonly timed = false;
  /** Schedules started so far. */
  schedules = 0;
  /** True once every schedule within the bound has been run. */
  exhausted = false;
  private readonly bound: number;
  private readonly stack: Frame[] = [];
  private depth = 0;
  private preemptions = 0;

  constructor(preemptionBound: number) {
    this.bound = preemptionBound;
  }

  begin(): void {
    this.depth = 0;
    this.preemptions = 0;
    this.schedules++;
  }

  onSpawn(): void {}
  end(): void {}

  pick(runnable: readonly Task[], prev: Task | null): Task {
    let frame = this.stack[this.depth];
    if (frame === undefined) {
      const prevId = prev !== null && runnable.includes(prev) ? prev.id : -1;
      const options: number[] = prevId >= 0 ? [prevId] : [];
      for (const t of runnable) if (t.id !== prevId) options.push(t.id);
      frame = { options, idx: 0, prevId, preemptionsBefore: this.preemptions };
      this.stack.push(frame);
    }
    this.depth++;
    const id = frame.options[frame.idx]!;
    if (frame.prevId >= 0 && id !== frame.prevId) this.preemptions++;
    for (const t of runnable) if (t.id === id) return t;
    throw new ReplayDivergence(
      `dfs: the world is not deterministic: task ${id} is not runnable at choice ${this.depth - 1}`,
    );
  }

  /** Moves to the next schedule within the bound; false when the space is exhausted. */
  advance(): boolean {
    this.stack.length = Math.min(this.stack.length, this.depth);
    while (this.stack.length > 0) {
      const f = this.stack[this.stack.length - 1]!;
      for (let j = f.idx + 1; j < f.options.length; j++) {
        const cost = f.prevId >= 0 && f.options[j] !== f.prevId ? 1 : 0;
        if (f.preemptionsBefore + cost <= this.bound) {
          f.idx = j;
          return true;
        }
      }
      this.stack.pop();
    }
    this.exhausted = true;
    return false;
  }
}
