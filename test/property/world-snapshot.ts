// What a failed call must leave as it was: every address space's VMAs and page table, and every
// open device's page table. Built from read-only accessors only (Mm.vmas, Mm.pt,
// SecondaryMmu.lookup/count) and the trace, so taking a snapshot changes nothing either.
import type { Kernel, Mm, SecondaryMmu } from '../../src/index.ts';

/** One part of the world, rendered to a string that compares equal when nothing changed. */
export interface WorldSnapshot {
  /** Per mm: each VMA's start, end, flags (rights and VM_*), file and offset. */
  readonly vmas: string;
  /** Per mm: each page-table entry's address, kind, frame and access rights. */
  readonly pt: string;
  /** Per device table: each translation (address, frame, generation, writable) and the count. */
  readonly dev: string;
}

/** A device page table and the address space it mirrors. */
export interface DeviceView {
  readonly pt: SecondaryMmu;
  readonly mm: Mm;
}

/**
 * The addresses each device table ever mapped, learnt from the trace's `dev-map` events:
 * SecondaryMmu has no iterator, so a snapshot looks each of them up (and compares the count,
 * which catches a translation at an address never seen before).
 */
export class DeviceAddresses {
  private readonly seen = new Map<string, Set<number>>();

  constructor(k: Kernel) {
    k.trace.subscribe((e) => {
      if (e.type !== 'dev-map') return;
      const key = `${e.dev}/${e.mm}`;
      let s = this.seen.get(key);
      if (s === undefined) {
        s = new Set();
        this.seen.set(key, s);
      }
      s.add(e.addr);
    });
  }

  /** The addresses `pt` has mapped in `mm`, ascending. */
  of(pt: SecondaryMmu, mm: Mm): number[] {
    return [...(this.seen.get(`${pt.name}/${mm.id}`) ?? [])].sort((a, b) => a - b);
  }
}

function vmasOf(mm: Mm): unknown[] {
  return mm.vmas.map((v) => [v.start, v.end, v.flags, v.file?.name ?? null, v.pgoff]);
}

function ptOf(mm: Mm): unknown[] {
  const out: unknown[] = [];
  for (const [vpn, p] of mm.pt) {
    const frame = p.kind === 'pfn' ? p.pfn : p.kind === 'swap' ? p.swap : (p.page?.pfn ?? -1);
    out.push([vpn, p.kind, frame, p.readable, p.writable]);
  }
  return out;
}

function devOf(d: DeviceView, addrs: DeviceAddresses): unknown[] {
  const entries = addrs.of(d.pt, d.mm).flatMap((a) => {
    const t = d.pt.lookup(d.mm, a);
    return t === undefined ? [] : [[a, t.pfn, t.gen, t.writable]];
  });
  return [d.pt.name, d.pt.count(d.mm), entries];
}

/** Snapshots `mms` and `devices`. */
export function snapshotWorld(
  mms: readonly Mm[],
  devices: readonly DeviceView[],
  addrs: DeviceAddresses,
): WorldSnapshot {
  return {
    vmas: JSON.stringify(mms.map((mm) => [mm.id, vmasOf(mm)])),
    pt: JSON.stringify(mms.map((mm) => [mm.id, ptOf(mm)])),
    dev: JSON.stringify(devices.map((d) => devOf(d, addrs))),
  };
}

/** The parts of `after` that differ from `before`. */
export function changedParts(before: WorldSnapshot, after: WorldSnapshot): (keyof WorldSnapshot)[] {
  return (['vmas', 'pt', 'dev'] as const).filter((p) => before[p] !== after[p]);
}
