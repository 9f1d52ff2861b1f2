// The world a command sequence runs in, and how a command's specs become arguments: pools of
// address spaces, notifiers, pinned pages, devices and mirrors that commands pick from by index,
// and the resolution of "page 3 of the second VMA" into an address.
import {
  type Dmirror,
  DmirrorDevice,
  type File,
  type Kernel,
  type Machine,
  MMAP_BASE,
  type Mm,
  MmuIntervalNotifier,
  MmuNotifier,
  type MmuNotifierOps,
  mmuIntervalSetSeq,
  PAGE_SIZE,
  type Page,
  type SvaBond,
} from '../../src/index.ts';
import type { AddrSpec, LenSpec } from './api-commands.ts';
import { DeviceAddresses } from './world-snapshot.ts';

const P = PAGE_SIZE;

/** An address space and whether the world still holds its mm_users reference. */
export interface MmSlot {
  readonly mm: Mm;
  live: boolean;
}

/** A classic subscriber made for mmu_notifier_register(), and where it is registered. */
export interface ClassicSlot {
  readonly sub: MmuNotifier;
  mm: Mm | null;
  registered: boolean;
}

/** A subscriber from mmu_notifier_get() and the references the world holds on it. */
export interface GotSlot {
  readonly sub: MmuNotifier;
  refs: number;
}

/** An interval subscription and whether it is inserted. */
export interface IntervalSlot {
  readonly sub: MmuIntervalNotifier;
  inserted: boolean;
}

/** Pages from getUserPages() and how they were taken. */
export interface PinSlot {
  readonly pages: Page[];
  readonly pin: boolean;
}

/** An open (or closed) HMM test device mirror. */
export interface MirrorSlot {
  readonly d: Dmirror;
  open: boolean;
}

/** Everything the commands of one run act on. */
export class World {
  readonly k: Kernel;
  readonly machine: Machine;
  readonly mms: MmSlot[];
  /** A regular file of 8 pages, open for writing. */
  readonly rw: File;
  /** A regular file of 8 pages, open read-only. */
  readonly ro: File;
  readonly devices: DmirrorDevice[];
  readonly mirrors: MirrorSlot[] = [];
  readonly classic: ClassicSlot[] = [];
  readonly got: GotSlot[] = [];
  readonly intervals: IntervalSlot[] = [];
  readonly pins: PinSlot[] = [];
  readonly bonds: SvaBond[] = [];
  readonly devAddrs: DeviceAddresses;
  /**
   * Allocations that found memory exhausted, so ran direct reclaim: reclaim may unmap or swap out
   * pages of any mapping (and their device translations), which a failed call is not to blame for.
   */
  reclaims = 0;
  /** Plain classic ops: every invalidation is accepted. */
  readonly classicOps: MmuNotifierOps = {
    *invalidateRangeStart() {
      return 0;
    },
    *invalidateRangeEnd() {},
    *release() {},
  };
  /** Ops for mmu_notifier_get(), with ->alloc_notifier and ->free_notifier. */
  readonly getOps: MmuNotifierOps;
  /** Ops without ->alloc_notifier: mmu_notifier_get() must refuse them. */
  readonly noAllocOps: MmuNotifierOps = {
    *invalidateRangeStart() {
      return 0;
    },
  };

  constructor(k: Kernel, machine: Machine) {
    this.k = k;
    this.machine = machine;
    this.mms = [{ mm: machine.createMm(), live: true }];
    this.rw = machine.createFile('data', { size: 8 * P });
    this.ro = machine.createFile('readonly', { size: 8 * P, writable: false });
    this.devices = [new DmirrorDevice(machine, 0)];
    this.devAddrs = new DeviceAddresses(k);
    const alloc = machine.allocPage.bind(machine);
    machine.allocPage = (kind) => {
      if (machine.phys.freeFrames === 0) this.reclaims++;
      return alloc(kind);
    };
    const getOps: MmuNotifierOps = {
      *invalidateRangeStart() {
        return 0;
      },
      allocNotifier: () => new MmuNotifier(getOps),
      freeNotifier() {},
    };
    this.getOps = getOps;
  }

  /** The pool entry `i` picks (modulo the pool's size); undefined for an empty pool. */
  static pick<T>(pool: readonly T[], i: number): T | undefined {
    return pool.length === 0 ? undefined : pool[i % pool.length];
  }

  mmSlot(i: number): MmSlot {
    return World.pick(this.mms, i)!;
  }

  /** A fresh interval subscription whose ->invalidate accepts and moves the sequence. */
  newInterval(): IntervalSlot {
    const sub = new MmuIntervalNotifier({
      *invalidate(s, _range, cur) {
        mmuIntervalSetSeq(s, cur);
        return true;
      },
    });
    const slot = { sub, inserted: false };
    this.intervals.push(slot);
    return slot;
  }
}

/** Where nothing is mapped in a fresh world: VMA-relative specs fall back to this base. */
const EMPTY_BASE = MMAP_BASE - 64 * P;

/** The address `spec` names in `mm` now. */
export function resolveAddr(mm: Mm, spec: AddrSpec): unknown {
  switch (spec.k) {
    case 'raw':
      return spec.v;
    case 'gap':
      return MMAP_BASE + spec.page * P;
    case 'vma': {
      const v = World.pick(mm.vmas, spec.vma);
      return (v?.start ?? EMPTY_BASE) + spec.page * P + spec.off;
    }
  }
}

/** The length `spec` names. */
export function resolveLen(spec: LenSpec): unknown {
  return spec.k === 'raw' ? spec.v : spec.n * P + spec.off;
}

/** True for a number the model's checks accept as an address or a length. */
export function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Pages of [start, end) that `mm` maps: the work of a walk that stops at the first hole. */
export function mappedPages(mm: Mm, start: number, end: number): number {
  let n = 0;
  for (const v of mm.vmasIn(start, end)) n += (Math.min(end, v.end) - Math.max(start, v.start)) / P;
  return n;
}
