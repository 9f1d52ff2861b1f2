/**
 * What the modelled devices keep of every MR beyond struct ib_mr: the device's translations of
 * it as the oracles see them, the address space it belongs to, and its lifetime.
 */
import { Tracked } from '../../../kernel/lifetime.ts';
import type { Mm } from '../../../mm/mm.ts';
import { SecondaryMmu } from '../../../mm/secondary-mmu.ts';
import { ibAccessWritable } from './ib-verbs.ts';
import { IbMr, type IbPd } from './objects.ts';
import type { IbUmem } from './umem.ts';
import type { UmemOdp } from './umem-odp.ts';
import type { UmemOdp2014 } from './umem-odp-2014.ts';

/** An MR of a modelled device. */
export class DeviceMr extends IbMr {
  /**
   * The device's translations as the oracles see them. For an ODP MR they mirror `mm`; a pinned
   * MR reports its DMA through it (its pages are its own, not a mirror of the CPU page table).
   */
  readonly tt: SecondaryMmu;
  /** The address space an ODP MR mirrors (the registering process's). */
  readonly mm: Mm;
  /** The MR's lifetime as the oracles see it: lookups hold references until they are done. */
  readonly tracked: Tracked;

  constructor(
    name: string,
    key: number,
    pd: IbPd,
    access: number,
    iova: number,
    length: number,
    umem: IbUmem | UmemOdp2014 | UmemOdp,
    mm: Mm,
  ) {
    super(key, pd, access, iova, length, umem);
    this.mm = mm;
    this.tt = new SecondaryMmu(name, { regionWritable: ibAccessWritable(access) });
    this.tracked = new Tracked(name);
  }

  get isOdp(): boolean {
    return this.umem.kind !== 'pinned';
  }
}
