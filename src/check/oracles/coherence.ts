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

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * The coherence oracle (the central invariant of DESIGN.md): a device translation is only
 * established from the CPU entry current at commit; when a CPU entry changes, no device
 * translation built from the old entry may remain (invalidate_range_start runs before the
 * change, so its callbacks have returned by then); a device write needs a writable CPU entry;
 * no device or CPU may reach a freed or reused frame.
 */
export class CoherenceOracle {
  /** Checks performed, for reports. */
  checks = 0;
  private readonly cpu = new Map<string, Entry>();
  /** key → device → translation. */
  private readonly dev = new Map<string, Map<string, Entry>>();
  /** Live frames: pfn → generation. */
  private readonly live = new Map<number, number>();
  /** Reverse index: pfn → the CPU keys and device/key pairs that map it. */
  private readonly users = new Map<number, Set<string>>();

  private link(pfn: number, who: string): void {
    let set = this.users.get(pfn);
    if (set === undefined) {
      set = new Set();
      this.users.set(pfn, set);
    }
    set.add(who);
  }

  private unlink(pfn: number, who: string): void {
    this.users.get(pfn)?.delete(who);
  }

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
        this.pteChanged(`${e.mm}:${e.addr}`, undefined, e.mm, e.addr);
        return;
      case 'dev-map':
        this.devMap(e);
        return;
      case 'dev-unmap': {
        const key = `${e.mm}:${e.addr}`;
        const devs = this.dev.get(key);
        const t = devs?.get(e.dev);
        if (t !== undefined) {
          devs!.delete(e.dev);
          this.unlink(t.pfn, `${e.dev}@${key}`);
        }
        return;
      }
      case 'dev-access':
        this.devAccess(e);
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
    if (pfn === 0 || pfn >= DEVICE_PFN_BASE) return;
    const g = this.live.get(pfn);
    if (g === undefined) this.fail('use-after-free', `${what} reaches pfn ${pfn} which is free`);
    if (g !== gen)
      this.fail(
        'use-after-free',
        `${what} reaches pfn ${pfn} generation ${gen}, but the frame was freed and reused (now generation ${g})`,
      );
  }

  private pteSet(e: TraceEventOf<'pte-set'>): void {
    const key = `${e.mm}:${e.addr}`;
    const next: Entry = { pfn: e.pfn, gen: e.gen, readable: e.readable, writable: e.writable };
    this.pteChanged(key, next, e.mm, e.addr);
    this.cpu.set(key, next);
    this.link(next.pfn, key);
  }

  /** A CPU entry changed: translations built from the old one must already be gone. */
  private pteChanged(key: string, next: Entry | undefined, mm: number, addr: number): void {
    const old = this.cpu.get(key);
    if (old !== undefined) this.unlink(old.pfn, key);
    if (next === undefined) this.cpu.delete(key);
    const devs = this.dev.get(key);
    if (devs === undefined || devs.size === 0) return;
    for (const [dev, t] of devs) {
      this.checks++;
      const where = `mm${mm} ${hex(addr)}`;
      if (next === undefined || !next.readable) {
        this.fail(
          'coherence',
          `device ${dev} still maps ${where} (pfn ${t.pfn}) after the CPU entry was ${next === undefined ? 'cleared' : 'made inaccessible'}: its invalidation did not remove the translation`,
        );
      }
      if (next.pfn !== t.pfn || next.gen !== t.gen) {
        this.fail(
          'coherence',
          `device ${dev} still maps ${where} to pfn ${t.pfn} after the CPU entry moved to pfn ${next.pfn}`,
        );
      }
      if (t.writable && !next.writable) {
        this.fail(
          'coherence',
          `device ${dev} can still write ${where} after the CPU entry was write-protected`,
        );
      }
    }
  }

  private devMap(e: TraceEventOf<'dev-map'>): void {
    const key = `${e.mm}:${e.addr}`;
    const cur = this.cpu.get(key);
    const where = `mm${e.mm} ${hex(e.addr)}`;
    this.checks++;
    if (cur === undefined || !cur.readable)
      this.fail(
        'coherence',
        `device ${e.dev} commits a translation of ${where} but the CPU entry is ${cur === undefined ? 'not present' : 'inaccessible'} (stale snapshot)`,
      );
    if (cur.pfn !== e.pfn || cur.gen !== e.gen)
      this.fail(
        'coherence',
        `device ${e.dev} commits ${where} → pfn ${e.pfn} but the CPU entry now maps pfn ${cur.pfn} (stale snapshot)`,
      );
    if (e.writable && !cur.writable)
      this.fail(
        'coherence',
        `device ${e.dev} commits a writable translation of ${where} but the CPU entry is read-only`,
      );
    this.frameLive(e.pfn, e.gen, `device ${e.dev} mapping ${where}`);
    let devs = this.dev.get(key);
    if (devs === undefined) {
      devs = new Map();
      this.dev.set(key, devs);
    }
    const prev = devs.get(e.dev);
    if (prev !== undefined) this.unlink(prev.pfn, `${e.dev}@${key}`);
    devs.set(e.dev, { pfn: e.pfn, gen: e.gen, readable: true, writable: e.writable });
    this.link(e.pfn, `${e.dev}@${key}`);
  }

  private devAccess(e: TraceEventOf<'dev-access'>): void {
    const where = `mm${e.mm} ${hex(e.addr)}`;
    const t = this.dev.get(`${e.mm}:${e.addr}`)?.get(e.dev);
    this.checks++;
    if (t === undefined)
      this.fail('coherence', `device ${e.dev} accesses ${where} without a translation`);
    if (e.write && !t.writable)
      this.fail('coherence', `device ${e.dev} writes ${where} through a read-only translation`);
    this.frameLive(t.pfn, t.gen, `device ${e.dev} ${e.write ? 'write' : 'read'} of ${where}`);
  }

  private pageFree(e: TraceEventOf<'page-free'>): void {
    this.checks++;
    for (const who of this.users.get(e.pfn) ?? []) {
      const [dev, key] = who.includes('@') ? who.split('@') : [null, who];
      const what = dev === null ? `the CPU entry mm${key}` : `device ${dev} (mm${key})`;
      this.fail('use-after-free', `pfn ${e.pfn} freed while ${what} still maps it`);
    }
    this.live.delete(e.pfn);
  }
}
