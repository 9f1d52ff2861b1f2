import { KernelBug } from '../../kernel/bug.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { TraceEvent, TraceEventOf } from '../../kernel/trace.ts';
import '../../mm/events.ts';

interface Entry {
  pfn: number;
  gen: number;
  readable: boolean;
  writable: boolean;
}

/** First device pfn: frames at or above this are device memory, outside the allocator. */
const DEVICE_PFN_BASE = 2 ** 40;
/** Each machine's pfns start with its zero page at a multiple of this (mm/phys-mem.ts). */
const PFN_SPAN = 2 ** 32;
/** Keys are mm·2^36 + page number: the page number of a user address is below 2^35. */
const MM_SHIFT = 2 ** 36;

const hex = (n: number) => `0x${n.toString(16)}`;
const keyOf = (mm: number, addr: number) => mm * MM_SHIFT + addr / 4096;
const where = (key: number) => `mm${Math.floor(key / MM_SHIFT)} ${hex((key % MM_SHIFT) * 4096)}`;

/** Adds `who` to the set of `pfn` in a reverse index. */
function link<T>(index: Map<number, Set<T>>, pfn: number, who: T): void {
  let set = index.get(pfn);
  if (set === undefined) {
    set = new Set();
    index.set(pfn, set);
  }
  set.add(who);
}

/**
 * The coherence oracle, odpsim's central invariant: a device translation is only
 * established from the CPU entry current at commit; when a CPU entry changes, no device
 * translation built from the old entry may remain (invalidate_range_start runs before the
 * change, so its callbacks have returned by then); a device write needs a writable CPU entry;
 * no device or CPU may reach a freed or reused frame.
 */
export class CoherenceOracle {
  /** Checks performed, for reports. */
  checks = 0;
  private readonly cpu = new Map<number, Entry>();
  /** key → device → translation. */
  private readonly dev = new Map<number, Map<string, Entry>>();
  /** Live frames: pfn → generation. */
  private readonly live = new Map<number, number>();
  /** Reverse indexes: pfn → CPU keys mapping it, and pfn → "device key" pairs. */
  private readonly cpuUsers = new Map<number, Set<number>>();
  private readonly devUsers = new Map<number, Set<string>>();
  /** Own migrations in progress: device → the ranges it keeps up to date itself. */
  private readonly own = new Map<string, { mm: number; start: number; end: number }[]>();

  /** Feeds one trace event; throws a KernelBug on a violation. */
  readonly onEvent = (e: TraceEvent): void => {
    switch (e.type) {
      case 'page-alloc':
        this.live.set(e.pfn, e.gen);
        return;
      case 'page-free':
        this.pageFree(e);
        return;
      case 'pte-set':
        this.pteSet(e);
        return;
      case 'pte-clear':
        this.pteChanged(keyOf(e.mm, e.addr), undefined);
        return;
      case 'dev-map':
        this.devMap(e);
        return;
      case 'dev-unmap':
        this.devUnmap(e);
        return;
      case 'dev-own-migrate':
        this.ownMigrate(e);
        return;
      case 'dev-access':
        this.devAccess(e);
        return;
      case 'dev-dma':
        this.frameLive(e.pfn, e.gen, `device ${e.dev} DMA ${e.write ? 'write' : 'read'}`);
        return;
      case 'cpu-access':
        this.frameLive(
          e.pfn,
          e.gen,
          `CPU ${e.write ? 'write' : 'read'} of mm${e.mm} ${hex(e.addr)}`,
        );
        return;
      default:
    }
  };

  private fail(rule: string, detail: string): never {
    const t = kernel().current;
    throw new KernelBug(rule, detail, { task: t?.name ?? null, held: t?.heldNames() ?? [] });
  }

  private frameLive(pfn: number, gen: number, what: string): void {
    this.checks++;
    if (pfn % PFN_SPAN === 0 || pfn >= DEVICE_PFN_BASE) return;
    const g = this.live.get(pfn);
    if (g === undefined) this.fail('use-after-free', `${what} reaches pfn ${pfn} which is free`);
    if (g !== gen)
      this.fail(
        'use-after-free',
        `${what} reaches pfn ${pfn} generation ${gen}, but the frame was freed and reused (now generation ${g})`,
      );
  }

  private pteSet(e: TraceEventOf<'pte-set'>): void {
    const key = keyOf(e.mm, e.addr);
    const next: Entry = { pfn: e.pfn, gen: e.gen, readable: e.readable, writable: e.writable };
    this.pteChanged(key, next);
    this.cpu.set(key, next);
    link(this.cpuUsers, next.pfn, key);
  }

  /** A CPU entry changed: translations built from the old one must already be gone. */
  private pteChanged(key: number, next: Entry | undefined): void {
    const old = this.cpu.get(key);
    if (old !== undefined) this.cpuUsers.get(old.pfn)?.delete(key);
    if (next === undefined) this.cpu.delete(key);
    const devs = this.dev.get(key);
    if (devs === undefined || devs.size === 0) return;
    for (const [dev, t] of devs) {
      this.checks++;
      if (this.exempt(dev, key)) continue;
      if (next === undefined || !next.readable) {
        this.fail(
          'coherence',
          `device ${dev} still maps ${where(key)} (pfn ${t.pfn}) after the CPU entry was ${next === undefined ? 'cleared' : 'made inaccessible'}: its invalidation did not remove the translation`,
        );
      }
      if (next.pfn !== t.pfn || next.gen !== t.gen) {
        this.fail(
          'coherence',
          `device ${dev} still maps ${where(key)} to pfn ${t.pfn} after the CPU entry moved to pfn ${next.pfn}`,
        );
      }
      if (t.writable && !next.writable) {
        this.fail(
          'coherence',
          `device ${dev} can still write ${where(key)} after the CPU entry was write-protected`,
        );
      }
    }
  }

  private devMap(e: TraceEventOf<'dev-map'>): void {
    const key = keyOf(e.mm, e.addr);
    if (!this.exempt(e.dev, key)) this.checkCommit(e, key);
    this.frameLive(e.pfn, e.gen, `device ${e.dev} mapping ${where(key)}`);
    let devs = this.dev.get(key);
    if (devs === undefined) {
      devs = new Map();
      this.dev.set(key, devs);
    }
    const prev = devs.get(e.dev);
    if (prev !== undefined) this.devUsers.get(prev.pfn)?.delete(`${e.dev} ${key}`);
    devs.set(e.dev, { pfn: e.pfn, gen: e.gen, readable: true, writable: e.writable });
    link(this.devUsers, e.pfn, `${e.dev} ${key}`);
  }

  /** Whether `dev` is migrating the page of `key` itself (its translation is its own affair). */
  private exempt(dev: string, key: number): boolean {
    const windows = this.own.get(dev);
    if (windows === undefined) return false;
    const mm = Math.floor(key / MM_SHIFT);
    const addr = (key % MM_SHIFT) * 4096;
    return windows.some((w) => w.mm === mm && addr >= w.start && addr < w.end);
  }

  /**
   * An own migration begins or ends. At the end, each translation the device holds in the
   * range must agree with the CPU entry, as one committed then would.
   */
  private ownMigrate(e: TraceEventOf<'dev-own-migrate'>): void {
    let windows = this.own.get(e.dev);
    if (e.phase === 'begin') {
      if (windows === undefined) {
        windows = [];
        this.own.set(e.dev, windows);
      }
      windows.push({ mm: e.mm, start: e.start, end: e.end });
      return;
    }
    const i =
      windows?.findIndex((w) => w.mm === e.mm && w.start === e.start && w.end === e.end) ?? -1;
    if (windows === undefined || i < 0)
      this.fail('coherence', `device ${e.dev} ends an own migration it never began`);
    windows.splice(i, 1);
    for (let addr = e.start; addr < e.end; addr += 4096) {
      const key = keyOf(e.mm, addr);
      const t = this.dev.get(key)?.get(e.dev);
      if (t === undefined || this.exempt(e.dev, key)) continue;
      this.checkCommit({ ...t, dev: e.dev }, key, true);
    }
  }

  /** A translation (committed, or `kept` through an own migration) must match the CPU entry. */
  private checkCommit(
    e: { dev: string; pfn: number; gen: number; writable: boolean },
    key: number,
    kept = false,
  ): void {
    const verb = kept ? 'holds' : 'commits';
    const when = kept ? 'after its own migration' : '(stale snapshot)';
    const cur = this.cpu.get(key);
    this.checks++;
    if (cur === undefined || !cur.readable) {
      this.fail(
        'coherence',
        `device ${e.dev} ${verb} a translation of ${where(key)} but the CPU entry is ${cur === undefined ? 'not present' : 'inaccessible'} ${when}`,
      );
    }
    if (cur.pfn !== e.pfn || cur.gen !== e.gen)
      this.fail(
        'coherence',
        `device ${e.dev} ${verb} ${where(key)} → pfn ${e.pfn} but the CPU entry now maps pfn ${cur.pfn} ${when}`,
      );
    if (e.writable && !cur.writable)
      this.fail(
        'coherence',
        `device ${e.dev} ${verb} a writable translation of ${where(key)} but the CPU entry is read-only${kept ? ` ${when}` : ''}`,
      );
  }

  private devUnmap(e: TraceEventOf<'dev-unmap'>): void {
    const key = keyOf(e.mm, e.addr);
    const devs = this.dev.get(key);
    const t = devs?.get(e.dev);
    if (devs === undefined || t === undefined) return;
    devs.delete(e.dev);
    if (devs.size === 0) this.dev.delete(key);
    this.devUsers.get(t.pfn)?.delete(`${e.dev} ${key}`);
  }

  private devAccess(e: TraceEventOf<'dev-access'>): void {
    const key = keyOf(e.mm, e.addr);
    const t = this.dev.get(key)?.get(e.dev);
    this.checks++;
    if (t === undefined)
      this.fail('coherence', `device ${e.dev} accesses ${where(key)} without a translation`);
    if (e.write && !t.writable)
      this.fail(
        'coherence',
        `device ${e.dev} writes ${where(key)} through a read-only translation`,
      );
    this.frameLive(t.pfn, t.gen, `device ${e.dev} ${e.write ? 'write' : 'read'} of ${where(key)}`);
  }

  private pageFree(e: TraceEventOf<'page-free'>): void {
    this.checks++;
    for (const key of this.cpuUsers.get(e.pfn) ?? [])
      this.fail(
        'use-after-free',
        `pfn ${e.pfn} freed while the CPU entry ${where(key)} still maps it`,
      );
    for (const who of this.devUsers.get(e.pfn) ?? []) {
      const cut = who.lastIndexOf(' ');
      const [dev, key] = [who.slice(0, cut), who.slice(cut + 1)];
      this.fail(
        'use-after-free',
        `pfn ${e.pfn} freed while device ${dev} still maps ${where(Number(key))}`,
      );
    }
    this.live.delete(e.pfn);
  }
}
