import { KernelBug } from '../../kernel/bug.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { TraceEvent } from '../../kernel/trace.ts';
import '../../mm/events.ts';

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * Progress of device faults (spec rdma-odp.md §6, 6): a device fault may give up and retry
 * only because an invalidation of its address space ran while it worked. A retry ('dev-retry')
 * when no invalidation of that mm is in flight and none started, ended or failed since the
 * attempt began (the task's 'dev-fault', or its previous retry) is a refusal with no cause (a
 * driver's own migration beginning or ending counts as one, for its mm): with no
 * invalidation in flight, a fault on mapped memory must complete.
 */
export class LivenessOracle {
  checks = 0;
  /** Per mm: invalidations started and not ended, and the step of the last change. */
  private readonly open = new Map<number, number>();
  private readonly lastActivity = new Map<number, number>();
  /** Per device, mm and task (two threads may fault through one device): its attempt's first step. */
  private readonly attempt = new Map<string, number>();

  readonly onEvent = (e: TraceEvent): void => {
    switch (e.type) {
      case 'mmu-start':
        this.activity(e.mm, e.step, 1);
        return;
      case 'mmu-start-done':
        this.activity(e.mm, e.step, e.ok ? 0 : -1);
        return;
      case 'mmu-end':
        this.activity(e.mm, e.step, -1);
        return;
      case 'mmu-release':
        this.activity(e.mm, e.step, 0);
        return;
      // A driver's own migration changes the range without invalidating it for the driver.
      case 'dev-own-migrate':
        this.activity(e.mm, e.step, 0);
        return;
      case 'dev-fault':
        this.attempt.set(`${e.dev} ${e.mm} ${e.task}`, e.step);
        return;
      case 'dev-retry':
        this.retry(e.dev, e.mm, e.task, e.start, e.reason, e.step);
        return;
      default:
    }
  };

  /** Invalidations of `mm` started (invalidate_range_start) and not yet ended or failed. */
  inFlight(mm: number): number {
    return this.open.get(mm) ?? 0;
  }

  private activity(mm: number, step: number, delta: number): void {
    this.open.set(mm, (this.open.get(mm) ?? 0) + delta);
    this.lastActivity.set(mm, step);
  }

  private retry(
    dev: string,
    mm: number,
    task: number,
    start: number,
    reason: string,
    step: number,
  ): void {
    this.checks++;
    const key = `${dev} ${mm} ${task}`;
    const since = this.attempt.get(key) ?? 0;
    this.attempt.set(key, step);
    if ((this.open.get(mm) ?? 0) > 0) return;
    const last = this.lastActivity.get(mm);
    if (last !== undefined && last >= since) return;
    const t = kernel().current;
    throw new KernelBug(
      'liveness',
      `device ${dev} gave up its fault at mm${mm} ${hex(start)} (${reason}) although no invalidation of mm${mm} ran since the attempt began at step ${since}: with none in flight, a fault on mapped memory must complete`,
      { task: t?.name ?? null, held: t?.heldNames() ?? [] },
    );
  }
}
