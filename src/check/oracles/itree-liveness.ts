import { KernelBug } from '../../kernel/bug.ts';
import type { Task } from '../../kernel/task.ts';
import type { TraceEvent } from '../../kernel/trace.ts';
import type { Machine } from '../../mm/machine.ts';
import type { Mm } from '../../mm/mm.ts';
import type { ItreeState } from '../../mm/mmu-interval-tree-state.ts';

/**
 * Liveness of the interval-notifier sequence: every interval
 * invalidation that began ends, so `active_invalidate_ranges` returns to zero and an odd
 * `invalidate_seq` becomes even again. A count left raised blocks mmu_interval_read_begin,
 * mmu_interval_notifier_remove and the deferred inserts forever; the deadlock report alone
 * would not say why.
 */
export class ItreeLivenessOracle {
  checks = 0;
  /** Every interval state seen, by mm id: kept after __mmdrop frees it, so a leak is not lost. */
  private readonly states = new Map<number, ItreeState>();

  /** `inFlight(mm)`: the invalidations of the mm started and not yet ended (from the trace). */
  constructor(
    private readonly machine: Machine,
    private readonly inFlight: (mm: number) => number,
  ) {}

  readonly onEvent = (e: TraceEvent): void => {
    if (e.type !== 'mmu-start' || this.states.has(e.mm)) return;
    const mm = this.machine.mms.find((m) => m.id === e.mm);
    const itree = mm === undefined ? null : itreeOf(mm);
    if (itree !== null) this.states.set(e.mm, itree);
  };

  /**
   * At quiescence (every task finished), every interval state must be idle, including those
   * of address spaces already freed (Linux frees a leaked count silently).
   */
  checkQuiescent(): void {
    for (const mm of this.machine.mms) {
      const itree = itreeOf(mm);
      if (itree !== null) this.states.set(mm.id, itree);
    }
    for (const [id, itree] of this.states) {
      this.checks++;
      if (itree.active > 0)
        throw new KernelBug(
          'liveness',
          `mm${id}: ${describe(itree)} with every task finished: an interval invalidation began and was never ended`,
        );
    }
  }

  /**
   * When no task can run: a task waiting on an mm's interval sequence whose active count
   * exceeds the invalidations in flight waits for an end that will never come.
   */
  checkStuck(blocked: readonly Task[]): void {
    for (const t of blocked) {
      for (const mm of this.machine.mms) {
        const itree = itreeOf(mm);
        if (itree === null || t.waitingOn !== itree.wq) continue;
        this.checks++;
        const open = this.inFlight(mm.id) + itree.releasing;
        if (itree.active <= open) continue;
        throw new KernelBug(
          'liveness',
          `${t.name} waits forever on mm${mm.id}'s interval sequence: ${describe(itree)} but ${open} invalidation(s) of mm${mm.id} in flight; an interval invalidation began and was never ended`,
          { task: t.name, held: t.heldNames() },
        );
      }
    }
  }
}

function itreeOf(mm: Mm): ItreeState | null {
  const subs = mm.notifiers;
  return subs?.hasItree ? subs.itree : null;
}

function describe(itree: ItreeState): string {
  const parity = itree.invalidating ? 'odd' : 'even';
  return `active_invalidate_ranges is ${itree.active}, invalidate_seq ${itree.seq} (${parity}), ${itree.deferred.length} deferred update(s)`;
}
