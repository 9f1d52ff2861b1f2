import { KernelBug } from '../../kernel/bug.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { TraceEvent } from '../../kernel/trace.ts';
import '../../mm/events.ts';

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * The rules of a device translation table beyond coherence (spec rdma-odp.md §6, 3 and 4):
 *
 * - permission: a writable translation only in a region registered for writing (a device
 *   slot writable ⇒ the MR writable; the CPU entry's side is the coherence oracle's), and no
 *   fault for write in a region registered without write access (write requested);
 * - serialization: at most one translation update in flight per table, and none — nor any
 *   map, unmap or access — once the table (its key) was destroyed, which it must be empty for.
 */
export class TranslationOracle {
  checks = 0;
  /** Tables with an update in flight. */
  private readonly updating = new Set<string>();
  private readonly retired = new Set<string>();
  /** Translations held per table, by "mm addr". */
  private readonly held = new Map<string, Set<string>>();

  readonly onEvent = (e: TraceEvent): void => {
    switch (e.type) {
      case 'dev-map':
        this.live(e.dev, `maps mm${e.mm} ${hex(e.addr)}`);
        this.checks++;
        if (e.writable && !e.regionWritable)
          this.fail(
            'permission',
            `device ${e.dev} commits a writable translation of mm${e.mm} ${hex(e.addr)}, but its region was registered without write access`,
          );
        this.entries(e.dev).add(`${e.mm} ${e.addr}`);
        return;
      case 'dev-fault':
        this.checks++;
        if (e.write && e.regionWritable === false)
          this.fail(
            'permission',
            `device ${e.dev} faults mm${e.mm} [${hex(e.start)}, ${hex(e.end)}) in for write, but its region was registered without write access`,
          );
        return;
      case 'dev-unmap':
        this.live(e.dev, `unmaps mm${e.mm} ${hex(e.addr)}`);
        this.entries(e.dev).delete(`${e.mm} ${e.addr}`);
        return;
      case 'dev-access':
        this.live(e.dev, `${e.write ? 'writes' : 'reads'} mm${e.mm} ${hex(e.addr)}`);
        return;
      case 'dev-dma':
        this.live(e.dev, `DMAs to pfn ${e.pfn}`);
        return;
      case 'dev-update':
        this.update(e.dev, e.phase);
        return;
      case 'dev-retire':
        this.retire(e.dev);
        return;
      default:
    }
  };

  private update(dev: string, phase: 'begin' | 'end'): void {
    this.checks++;
    if (phase === 'end') {
      this.updating.delete(dev);
      return;
    }
    this.live(dev, 'posts a translation update');
    if (this.updating.has(dev))
      this.fail(
        'serialization',
        `two translation updates of ${dev} are in flight at once (the device needs them fenced)`,
      );
    this.updating.add(dev);
  }

  private retire(dev: string): void {
    this.checks++;
    const n = this.held.get(dev)?.size ?? 0;
    if (n > 0)
      this.fail('serialization', `${dev} is destroyed while it still holds ${n} translations`);
    if (this.updating.has(dev))
      this.fail('serialization', `${dev} is destroyed with a translation update in flight`);
    this.retired.add(dev);
    this.held.delete(dev);
  }

  private entries(dev: string): Set<string> {
    let set = this.held.get(dev);
    if (set === undefined) {
      set = new Set();
      this.held.set(dev, set);
    }
    return set;
  }

  private live(dev: string, what: string): void {
    if (this.retired.has(dev))
      this.fail('serialization', `device ${dev} ${what} after its translation table was destroyed`);
  }

  private fail(rule: string, detail: string): never {
    const t = kernel().current;
    throw new KernelBug(rule, detail, { task: t?.name ?? null, held: t?.heldNames() ?? [] });
  }
}
