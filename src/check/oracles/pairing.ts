import { KernelBug } from '../../kernel/bug.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { TraceEvent } from '../../kernel/trace.ts';
import '../../mm/events.ts';

interface Open {
  readonly mm: number;
  readonly start: number;
  readonly end: number;
  readonly event: string;
  /** The start returned (successfully); only then may the end come. */
  started: boolean;
}

/**
 * The pairing oracle: every successful mmu_notifier_invalidate_range_start() has exactly one
 * mmu_notifier_invalidate_range_end() with the identical (mm, start, end); a failed
 * non-blocking start has none; nothing is left open at quiescence.
 */
export class PairingOracle {
  checks = 0;
  private readonly open = new Map<number, Open>();

  readonly onEvent = (e: TraceEvent): void => {
    if (e.type === 'mmu-start') {
      this.open.set(e.id, { mm: e.mm, start: e.start, end: e.end, event: e.event, started: false });
    } else if (e.type === 'mmu-start-done') {
      const o = this.open.get(e.id);
      if (o === undefined) return;
      if (e.ok) o.started = true;
      else this.open.delete(e.id);
    } else if (e.type === 'mmu-end') {
      this.checks++;
      const o = this.open.get(e.id);
      if (o === undefined)
        this.fail(
          `invalidate_range_end of mm${e.mm} [${e.start}, ${e.end}) without a matching successful start`,
        );
      if (!o.started)
        this.fail(
          `invalidate_range_end of mm${e.mm} [${e.start}, ${e.end}) before its start returned`,
        );
      if (o.mm !== e.mm || o.start !== e.start || o.end !== e.end) {
        this.fail(
          `invalidate_range_end of mm${e.mm} [0x${e.start.toString(16)}, 0x${e.end.toString(16)}) does not match its start over mm${o.mm} [0x${o.start.toString(16)}, 0x${o.end.toString(16)}) (${o.event})`,
        );
      }
      this.open.delete(e.id);
    }
  };

  /** At quiescence: every start was ended. */
  checkQuiescent(): void {
    for (const o of this.open.values()) {
      this.fail(
        `invalidate_range_start of mm${o.mm} [0x${o.start.toString(16)}, 0x${o.end.toString(16)}) (${o.event}) was never ended`,
      );
    }
  }

  /** Ranges started and not yet ended. */
  get inFlight(): number {
    return this.open.size;
  }

  private fail(detail: string): never {
    const t = kernel().current;
    throw new KernelBug('notifier-pairing', detail, {
      task: t?.name ?? null,
      held: t?.heldNames() ?? [],
    });
  }
}
