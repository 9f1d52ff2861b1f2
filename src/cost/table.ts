/**
 * The cost table: the virtual time every modelled operation is charged, in ns, each with where
 * its value comes from. The HCA's fault path is calibrated to Lesokhin et al., "Page Fault
 * Support for Network Controllers", ASPLOS 2017 (ConnectX-4, 56 Gb/s): Figure 3 breaks one
 * fault down (1 page and 1024 pages), Table 4 gives the spread of a 4 KiB fault. The CPU-side
 * figures are orders of magnitude for a current x86 server, stated as such.
 */

/** Quantiles of a cost that varies (drawn per operation from the run's seeded PRNG), ns. */
export interface CostQuantiles {
  readonly min: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** What a unit of `perUnit` counts. */
export type CostUnit = 'page' | 'byte' | 'entry';

/**
 * One entry: a base (fixed or drawn) plus a part growing with the operation's size. For pages
 * the base is the cost of one page and `perUnit` is added for each further page; for bytes
 * and entries it is added for every one.
 */
export interface CostEntry {
  readonly base: number | CostQuantiles;
  /** Added per page (or byte) the operation covers. */
  readonly perUnit?: number;
  readonly unit?: CostUnit;
  /** What is charged, in a line. */
  readonly what: string;
  /** Where the value comes from. */
  readonly source: string;
  /** The least base an override may set, ns (default 0). */
  readonly min?: number;
}

const FIG3 = 'Lesokhin et al. ASPLOS 2017, Figure 3';

/**
 * Figure 3's 1024-page fault minus its 1-page fault, per extra page: trigger 153 − 128 µs,
 * driver 107 − 5 µs, page-table update 18 − 7 µs (the resume does not grow).
 */
const perExtraPage = (one: number, many: number) => ((many - one) * 1000) / 1023;

/** The cost table: every modelled operation's virtual time, by name, with its source. */
export const COSTS = {
  'cpu.fault': {
    base: 700,
    what: 'a CPU page fault: exception entry and exit, handle_mm_fault, the PTE update',
    source: 'estimate: ~0.5-1 µs for a 4 KiB anonymous fault on current x86, allocation apart',
  },
  'page.alloc': {
    base: 400,
    what: 'allocating and zeroing a 4 KiB page (the zero fill dominates)',
    source: 'estimate: clear_page at ~10-15 GB/s plus the buddy allocator fast path',
  },
  'page.copy': {
    base: 500,
    perUnit: 500,
    unit: 'page',
    what: "copying 4 KiB pages (copy on write, migration, the HMM test device's bounce buffer)",
    source: 'estimate: copy_page at ~10 GB/s',
  },
  'swap.in': {
    base: 80_000,
    what: 'reading a page back from swap (the fault waits for it)',
    source: 'estimate: 4 KiB random read of a datacenter NVMe SSD, ~80 µs',
  },
  'swap.out': {
    base: 20_000,
    what: 'writing a page to swap (reclaim waits for it)',
    source: 'estimate: 4 KiB write of an NVMe SSD into its write cache, ~20 µs',
  },
  'tlb.flush': {
    base: 1_500,
    what: 'a TLB flush of a range of an mm: local INVLPG and the shootdown IPI round trip',
    source: 'estimate: shootdowns cost ~1-5 µs (Amit, USENIX ATC 2017)',
  },
  'hmm.retry': {
    base: 100_000,
    min: 1,
    what: 'a range-fault pass that lost a race, before the next (at least 1 ns: a livelock must reach the 1 s timeout)',
    source: 'estimate: a pass with direct reclaim and swap I/O takes ~100 µs',
  },
  'mlx5.pf.trigger': {
    base: { min: 110_000, p50: 124_000, p95: 159_000, p99: 170_000, max: 373_000 },
    perUnit: perExtraPage(128, 153),
    unit: 'page',
    what: 'from the translation miss to the driver: the HCA stops the QP, writes the EQE, interrupts',
    source: `${FIG3} (128 µs; 153 µs for 1024 pages); spread from Table 4 (a 4 KiB fault: p50 215, p95 250, p99 261, max 464 µs) less the fixed parts`,
  },
  'mlx5.pf.driver': {
    base: 5_000,
    perUnit: perExtraPage(5, 107),
    unit: 'page',
    what: 'the driver resolving the fault: the MR lookup, the page walk and the DMA mapping',
    source: `${FIG3} (5 µs; 107 µs for 1024 pages)`,
  },
  'mlx5.umr': {
    base: 7_000,
    perUnit: perExtraPage(7, 18),
    unit: 'page',
    what: "a UMR work request rewriting an MR's translation entries, posted and completed",
    source: `${FIG3}, "update NIC page table" (7 µs; 18 µs for 1024 pages)`,
  },
  'mlx5.pf.resume': {
    base: 79_000,
    what: 'PAGE_FAULT_RESUME: the firmware command, until the QP goes on',
    source: `${FIG3} (80 µs; 78 µs for 1024 pages)`,
  },
  'mlx5.invalidate': {
    base: 10_000,
    perUnit: perExtraPage(17 - 7, 61 - 18),
    unit: 'page',
    what: 'an invalidation of an ODP MR besides its UMR: the callback and the DMA unmapping, per mapped page',
    source:
      'Lesokhin et al. ASPLOS 2017: 17 µs for 1 page, 61 µs for 1024 pages, ~0 more for unmapped pages (less the UMR)',
  },
  'notifier.walk': {
    base: 0,
    perUnit: 20,
    unit: 'entry',
    what: 'an invalidation finding its subscribers: each tree node descended or list entry examined',
    source: 'estimate: a pointer chase that misses the L1 cache, ~20 ns',
  },
  'wire.latency': {
    base: 700,
    what: 'one-way latency of the link between two ports (PHY, cable, no switch)',
    source: 'estimate: FDR InfiniBand port to port, ~0.7 µs',
  },
  'wire.byte': {
    base: 0,
    perUnit: 8 / 56,
    unit: 'byte',
    what: 'serialising a packet onto the link',
    source: '56 Gb/s (FDR 4x), the link of the measurements',
  },
  'rxe.fault': {
    base: 3_000,
    perUnit: 100,
    unit: 'page',
    what: 'the software device faulting pages in from its packet path (no firmware, no interrupt)',
    source: 'estimate: a few µs; rxe calls the ODP fault path synchronously',
  },
  'rxe.packet': {
    base: 2_000,
    what: 'the software device handling one packet in its tasklets',
    source: 'estimate: rxe sustains a few hundred thousand packets a second per QP',
  },
  'iommu.prq': {
    base: 10_000,
    what: "a PRI page request: the device's request, the IOMMU's queue and the response",
    source: 'estimate: ATS/PRI round trips are several µs',
  },
} satisfies Record<string, CostEntry>;

/** The name of a cost. */
export type CostName = keyof typeof COSTS;

/** Every cost name, in table order. */
export const COST_NAMES = Object.keys(COSTS) as CostName[];
