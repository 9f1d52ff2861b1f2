import { KernelBug } from '../../kernel/bug.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { TraceEvent, TraceEventOf } from '../../kernel/trace.ts';
import '../../mm/events.ts';

/** Keys are mm·2^36 + page number, as in the coherence oracle. */
const MM_SHIFT = 2 ** 36;
const PAGE = 4096;

const hex = (n: number) => `0x${n.toString(16)}`;
const keyOf = (mm: number, addr: number) => mm * MM_SHIFT + addr / PAGE;

interface Cached {
  readonly tlb: string;
  readonly kind: 'cpu' | 'iotlb';
  readonly mm: number;
  readonly addr: number;
  readonly pfn: number;
  readonly gen: number;
  readonly writable: boolean;
  /** Step of the fill. */
  readonly step: number;
}

interface CpuEntry {
  readonly pfn: number;
  readonly gen: number;
  readonly writable: boolean;
}

/** When something last happened, for the report. */
interface Mark {
  readonly step: number;
  readonly what: string;
}

/**
 * The TLB oracle (spec mm-paths.md §4): a frame goes back to the allocator only once no CPU
 * TLB and no IOTLB can reach it, and a call that takes rights away (munmap, mprotect,
 * madvise) returns only once every cached translation of its range agrees with the page
 * table. It mirrors the caches from the trace: fills and evictions as the caches report them,
 * but flushes by their own semantics (a CPU flush reaches every CPU TLB of the mm; an IOTLB
 * invalidation reaches its own cache).
 */
export class TlbOracle {
  checks = 0;
  /** tlb name → key → translation. */
  private readonly caches = new Map<string, Map<number, Cached>>();
  /** mm → names of its CPU TLBs. */
  private readonly cpuTlbs = new Map<number, Set<string>>();
  /** pfn → cached translations of it. */
  private readonly byPfn = new Map<number, Set<Cached>>();
  /** The CPU page table, and when each entry last changed. */
  private readonly ptes = new Map<number, CpuEntry>();
  private readonly changed = new Map<number, Mark>();
  /** The last CPU flush of each mm, and of each IOTLB. */
  private readonly lastFlush = new Map<string, Mark>();

  readonly onEvent = (e: TraceEvent): void => {
    switch (e.type) {
      case 'tlb-fill':
        this.fill(e);
        return;
      case 'tlb-drop':
        this.drop(e.tlb, keyOf(e.mm, e.addr));
        return;
      case 'tlb-flush':
        this.lastFlush.set(`mm${e.mm}`, { step: e.step, what: `[${hex(e.start)}, ${hex(e.end)})` });
        for (const name of this.cpuTlbs.get(e.mm) ?? []) this.flush(name, e.mm, e.start, e.end);
        return;
      case 'iotlb-flush':
        this.lastFlush.set(e.tlb, { step: e.step, what: `[${hex(e.start)}, ${hex(e.end)})` });
        this.flush(e.tlb, e.mm, e.start, e.end);
        return;
      case 'pte-set': {
        const key = keyOf(e.mm, e.addr);
        this.ptes.set(key, { pfn: e.pfn, gen: e.gen, writable: e.writable });
        this.changed.set(key, { step: e.step, what: `set to pfn ${e.pfn}` });
        return;
      }
      case 'pte-clear': {
        const key = keyOf(e.mm, e.addr);
        this.ptes.delete(key);
        this.changed.set(key, {
          step: e.step,
          what: `cleared${e.to ? ` (to a ${e.to} entry)` : ''}`,
        });
        return;
      }
      case 'page-free':
        this.pageFree(e);
        return;
      case 'tlb-revoked':
        this.revoked(e);
        return;
      default:
    }
  };

  private fill(e: TraceEventOf<'tlb-fill'>): void {
    this.checks++;
    const key = keyOf(e.mm, e.addr);
    this.drop(e.tlb, key);
    let cache = this.caches.get(e.tlb);
    if (cache === undefined) {
      cache = new Map();
      this.caches.set(e.tlb, cache);
    }
    const c: Cached = {
      tlb: e.tlb,
      kind: e.kind,
      mm: e.mm,
      addr: e.addr,
      pfn: e.pfn,
      gen: e.gen,
      writable: e.writable,
      step: e.step,
    };
    cache.set(key, c);
    if (e.kind === 'cpu') {
      let names = this.cpuTlbs.get(e.mm);
      if (names === undefined) {
        names = new Set();
        this.cpuTlbs.set(e.mm, names);
      }
      names.add(e.tlb);
    }
    let users = this.byPfn.get(e.pfn);
    if (users === undefined) {
      users = new Set();
      this.byPfn.set(e.pfn, users);
    }
    users.add(c);
  }

  private drop(tlb: string, key: number): void {
    const cache = this.caches.get(tlb);
    const c = cache?.get(key);
    if (c === undefined) return;
    cache!.delete(key);
    this.byPfn.get(c.pfn)?.delete(c);
  }

  private flush(tlb: string, mm: number, start: number, end: number): void {
    const cache = this.caches.get(tlb);
    if (cache === undefined) return;
    for (const [key, c] of [...cache])
      if (c.mm === mm && c.addr + PAGE > start && c.addr < end) this.drop(tlb, key);
  }

  private pageFree(e: TraceEventOf<'page-free'>): void {
    this.checks++;
    for (const c of this.byPfn.get(e.pfn) ?? [])
      if (c.gen === e.gen)
        this.fail(
          'stale-tlb',
          `pfn ${e.pfn} is freed while ${this.describe(c)}; ${this.missingFlush(c)}`,
        );
  }

  private revoked(e: TraceEventOf<'tlb-revoked'>): void {
    this.checks++;
    for (const cache of this.caches.values())
      for (const c of cache.values()) {
        if (c.mm !== e.mm || c.addr + PAGE <= e.start || c.addr >= e.end) continue;
        const now = this.ptes.get(keyOf(c.mm, c.addr));
        const agrees =
          now !== undefined &&
          now.pfn === c.pfn &&
          now.gen === c.gen &&
          (!c.writable || now.writable);
        // An entry the call's own rights still allow may lag a change another path made (a
        // reclaim's batched flush still pending): that path flushes before the frame is freed,
        // which pageFree() holds it to.
        const allowed = c.writable ? e.leaves === 'write' : e.leaves !== 'none';
        if (!agrees && !allowed)
          this.fail(
            'tlb-revocation',
            `${e.call} returns while ${this.describe(c)}, which neither what it left the range (${e.leaves}) nor its CPU entry allows (${now === undefined ? 'no entry' : `pfn ${now.pfn}${now.writable ? '' : ', read-only'}`}); ${this.missingFlush(c)}`,
          );
      }
  }

  private describe(c: Cached): string {
    const who = c.kind === 'cpu' ? `the TLB of ${c.tlb}` : `the IOTLB of ${c.tlb}`;
    return `${who} still caches mm${c.mm} ${hex(c.addr)} → pfn ${c.pfn}${c.writable ? ' (writable)' : ''}, filled at step ${c.step}`;
  }

  /** Which flush should have removed `c`: the one after its PTE's last change. */
  private missingFlush(c: Cached): string {
    const change = this.changed.get(keyOf(c.mm, c.addr));
    const since = change === undefined ? '' : `its PTE was ${change.what} at step ${change.step}, `;
    const last = this.lastFlush.get(c.kind === 'cpu' ? `mm${c.mm}` : c.tlb);
    const flush =
      c.kind === 'cpu'
        ? `a CPU TLB flush of mm${c.mm} covering ${hex(c.addr)}`
        : `an invalidation of the IOTLB of ${c.tlb} covering ${hex(c.addr)}`;
    const lastText = last === undefined ? 'none yet' : `${last.what} at step ${last.step}`;
    return `${since}and ${flush} should have followed (the last was ${lastText})`;
  }

  private fail(rule: string, detail: string): never {
    const t = kernel().current;
    throw new KernelBug(rule, detail, { task: t?.name ?? null, held: t?.heldNames() ?? [] });
  }
}
