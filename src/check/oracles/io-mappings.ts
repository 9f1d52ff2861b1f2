import { KernelBug } from '../../kernel/bug.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { TraceEvent } from '../../kernel/trace.ts';
import '../../mm/events.ts';
import type { Machine } from '../../mm/machine.ts';

/** Device frames (BARs) start here (mm/machine.ts). */
const DEVICE_PFN_BASE = 2 ** 40;
const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * Mappings of device IO memory (spec mmap-io.md §3):
 *
 * - I1 revocation: when device frames are revoked from a file's mappings (a disassociation
 *   returned) no page-table entry of a VMA of that file maps them, in any mm; once their device
 *   is gone (hot unplug), no entry at all may map them, and mapping or touching them is a
 *   machine check;
 * - I3 tracking: a VMA a driver tracks is unlinked from the driver's list before it is freed.
 */
export class IoMappingsOracle {
  checks = 0;
  /** CPU entries mapping device frames: pfn → "mm addr" keys, and key → pfn. */
  private readonly byPfn = new Map<number, Set<string>>();
  private readonly byKey = new Map<string, number>();
  /** Device frame ranges whose device is gone. */
  private readonly gone: [number, number][] = [];
  /** Tracked VMAs ("mm vma") → tracker. */
  private readonly tracked = new Map<string, string>();

  private readonly machine: Machine;

  constructor(machine: Machine) {
    this.machine = machine;
  }

  readonly onEvent = (e: TraceEvent): void => {
    switch (e.type) {
      case 'pte-set':
        this.clear(`${e.mm} ${e.addr}`);
        if (e.pfn < DEVICE_PFN_BASE) return;
        this.checks++;
        if (this.isGone(e.pfn))
          this.fail(
            'machine-check',
            `mm${e.mm} ${hex(e.addr)} maps pfn ${hex(e.pfn)} of a device that was unplugged`,
          );
        this.add(`${e.mm} ${e.addr}`, e.pfn);
        return;
      case 'pte-clear':
        this.clear(`${e.mm} ${e.addr}`);
        return;
      case 'cpu-access':
        if (e.pfn < DEVICE_PFN_BASE) return;
        this.checks++;
        if (this.isGone(e.pfn))
          this.fail(
            'machine-check',
            `CPU ${e.write ? 'write' : 'read'} of mm${e.mm} ${hex(e.addr)} reaches pfn ${hex(e.pfn)} of a device that was unplugged`,
          );
        return;
      case 'pfn-revoke':
        this.revoke(e.first, e.count, e.file);
        return;
      case 'vma-track':
        this.checks++;
        if (e.op === 'link') this.tracked.set(`${e.mm} ${e.vma}`, e.tracker);
        else this.tracked.delete(`${e.mm} ${e.vma}`);
        return;
      case 'vma-free': {
        const tracker = this.tracked.get(`${e.mm} ${e.vma}`);
        if (tracker !== undefined)
          this.fail(
            'tracking',
            `VMA ${e.vma} of mm${e.mm} is freed while ${tracker} still tracks it`,
          );
        return;
      }
      default:
    }
  };

  private add(key: string, pfn: number): void {
    let keys = this.byPfn.get(pfn);
    if (keys === undefined) {
      keys = new Set();
      this.byPfn.set(pfn, keys);
    }
    keys.add(key);
    this.byKey.set(key, pfn);
  }

  private clear(key: string): void {
    const pfn = this.byKey.get(key);
    if (pfn === undefined) return;
    this.byKey.delete(key);
    this.byPfn.get(pfn)?.delete(key);
  }

  private revoke(first: number, count: number, file: string | null): void {
    this.checks++;
    for (const [pfn, keys] of this.byPfn) {
      if (pfn < first || pfn >= first + count) continue;
      for (const key of keys) {
        const [id, addr] = key.split(' ').map(Number) as [number, number];
        const mm = this.machine.mms.find((m) => m.id === id);
        // An mm with no user left is in exit_mmap(), which is tearing the entries down and
        // which disassociation skips (mmget_not_zero): nothing can touch them any more.
        if (mm === undefined || mm.users <= 0) continue;
        if (file !== null && mm.findVma(addr)?.file?.name !== file) continue;
        this.fail(
          'revocation',
          `device memory pfn ${hex(pfn)} was ${file === null ? 'unplugged' : `revoked from ${file}`} while mm${id} ${hex(addr)} still maps it`,
        );
      }
    }
    if (file === null) this.gone.push([first, first + count]);
  }

  private isGone(pfn: number): boolean {
    for (const [lo, hi] of this.gone) if (pfn >= lo && pfn < hi) return true;
    return false;
  }

  private fail(rule: string, detail: string): never {
    const t = kernel().current;
    throw new KernelBug(rule, detail, { task: t?.name ?? null, held: t?.heldNames() ?? [] });
  }
}
