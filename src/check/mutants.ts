import { Errno } from '../lib/errors.ts';

/** A documented deviation from the correct protocol that reproduces a historical bug. */
export interface MutantInfo {
  /** The name worlds enable it by (`mutants: [name]`). */
  readonly name: string;
  /** What the deviating code does. */
  readonly description: string;
  /** The commit or design history it reproduces. */
  readonly history: string;
  /** The rule its bug breaks: what an exploration that finds it reports. */
  readonly rule: string;
  /** How a built-in scenario finds it; absent when only a test world reaches it. */
  readonly reach?: MutantReach;
  /**
   * Other rules its bug can be reported under first, in worlds other than its reach's (an
   * invariant checker that sees the broken state before the oracle of its rule sees the harm).
   */
  readonly symptoms?: readonly string[];
}

/** Every rule an exploration that finds `m` may report it under. */
export function mutantRules(m: MutantInfo): string[] {
  return [m.rule, m.reach?.reports, ...(m.symptoms ?? [])].filter(
    (r): r is string => r !== undefined,
  );
}

/** An exploration of a built-in scenario that finds a mutant (`odpsim explore` arguments). */
export interface MutantReach {
  readonly scenario: string;
  readonly set: Readonly<Record<string, number>>;
  readonly strategy: 'pct' | 'random';
  readonly seed: number;
  /** Runs within which it is found (the budget of the test that checks it). */
  readonly runs: number;
  /** The rule this world reports when it sees a symptom, not the bug itself (default: the mutant's rule). */
  readonly reports?: string;
  /** A phrase the report contains (what a reader should look for in it). */
  readonly message?: string;
}

/** The `odpsim explore` command line of a reach. */
export function reachCommand(mutant: string, r: MutantReach): string {
  const sets = Object.entries(r.set).map(([k, v]) => ` --set ${k}=${v}`);
  return `odpsim explore ${r.scenario} --mutant ${mutant}${sets.join('')} --strategy ${r.strategy} --seed ${r.seed} --runs ${r.runs}`;
}

/**
 * Every mutant the model knows. Each deviates at exactly one place, behind a check that
 * names it; the correct code is the default.
 */
export const MUTANTS: readonly MutantInfo[] = [
  {
    name: 'mm.free-before-start',
    description:
      'munmap/zap frees the pages before invalidate_range_start has told the secondary MMUs',
    history:
      'the page-freeing rule: a page is freed only after every secondary MMU was told (else a device can DMA into a reused page)',
    rule: 'coherence',
    reach: { scenario: 'dmirror-race', set: {}, strategy: 'pct', seed: 1, runs: 10 },
  },
  {
    name: 'mm.notifier-under-ptl',
    description: 'the COW fault calls invalidate_range_start/end with the page-table spinlock held',
    history:
      'before 2ec74c3ef2d8 (v3.7), notifiers ran under the PT lock so no callback could sleep',
    rule: 'sleep-in-atomic',
    reach: { scenario: 'default', set: {}, strategy: 'pct', seed: 1, runs: 5 },
  },
  {
    name: 'mm.fork-end-range-mismatch',
    description:
      "fork's copy_page_range passes invalidate_range_end its walk cursor (advanced to the end) as the start",
    history:
      'the mmun_start/mmun_end rule of 2ec74c3ef2d8 (v3.7): copy_page_range and mremap passed end arguments of their own',
    rule: 'notifier-pairing',
    reach: { scenario: 'default', set: {}, strategy: 'pct', seed: 1, runs: 5 },
  },
  {
    name: 'mm.mprotect-skips-batched-flush',
    description:
      'mprotect does not complete the CPU TLB flush reclaim deferred (flush_tlb_batched_pending), so an entry reclaim already cleared stays writable in a CPU TLB after mprotect(PROT_READ) returns',
    history:
      'before 3ea277194daa (v4.13): batched reclaim flushes (TTU_BATCH_FLUSH) raced with mprotect, munmap, mremap and madvise',
    rule: 'tlb-revocation',
    reach: { scenario: 'sva', set: {}, strategy: 'random', seed: 1, runs: 800 },
  },
  {
    name: 'mm.mremap-flush-after-unlock',
    description:
      'mremap flushes the moved range from the TLBs only after dropping the page-table and rmap locks, so migration or reclaim can free a moved page while a CPU still reaches it at the old address',
    history: 'CVE-2018-18281, fixed by eb66ae030829 (v4.20)',
    rule: 'stale-tlb',
    reach: { scenario: 'sva', set: { ops: 24 }, strategy: 'pct', seed: 1, runs: 100 },
  },
  {
    name: 'mm.gather-ignores-nested',
    description:
      'tlb_finish_mmu flushes only what its own walk cleared, even when another gather of the mm ran meanwhile: of two racing MADV_DONTNEED calls one can return while a CPU still holds an entry the other cleared',
    history: 'before 99baac21e458 (v4.13, "mm: fix MADV_[FREE|DONTNEED] TLB flush miss problem")',
    rule: 'tlb-revocation',
    reach: { scenario: 'sva', set: {}, strategy: 'random', seed: 1, runs: 50 },
  },
  {
    name: 'sva.flush-at-range-start',
    description:
      'the SVA driver invalidates its IOTLB from invalidate_range_start instead of the secondary-TLB hook: the IOMMU walks the old entry again before it is cleared and keeps it after the frame is freed',
    history:
      'before the invalidate_range() hook (0f0a327fa12c, v3.19) an IOMMU that walks CPU page tables had only start/end, and flushing at start is too early',
    rule: 'stale-tlb',
    reach: { scenario: 'sva', set: {}, strategy: 'random', seed: 1, runs: 20 },
  },
  {
    name: 'itree.insert-idle-rule',
    description:
      'N1: an interval notifier inserted during an invalidation uses the idle rule (seq − 1, direct insert)',
    history:
      'the hazard 99cb252f5e68 solves by escalating the sequence; ODP 882214e2b128 needed a notifier count for it',
    rule: 'coherence',
    reach: {
      scenario: 'itree-nonblock-leak',
      set: { fix: 1 },
      strategy: 'random',
      seed: 1,
      runs: 500,
    },
    // The tree's invariant checks see an insert during a walk before a stale translation shows.
    symptoms: ['itree-invariant'],
  },
  {
    name: 'notifier.nonblock-unpaired',
    description:
      'N4: a failed non-blocking start returns EAGAIN without calling end on the subscribers whose start succeeded',
    history:
      'c2655835fd8c "mm/mmu_notifiers: ensure range_end() is paired with range_start()" (2021, fixes 93065ac753e4)',
    rule: 'notifier-pairing',
    reach: {
      scenario: 'itree-nonblock-leak',
      set: { fix: 1, kvm: 1 },
      strategy: 'pct',
      seed: 1,
      runs: 10,
      // The VM's count stays raised: its vCPU's faults retry with no invalidation running.
      reports: 'liveness',
    },
  },
  {
    name: 'mirror.valid-flag',
    description:
      'N2: the interval mirror (src/drivers/mirror/interval-mirror.ts) guards its commit with a boolean valid flag set at start and end instead of a sequence',
    history:
      '04ec32fbc2b2 "mm/hmm: allow hmm_range to be used with a mmu_interval_notifier or hmm_mirror" (v5.5)',
    rule: 'coherence',
    reach: { scenario: 'interval-mirror', set: { op: 2 }, strategy: 'pct', seed: 1, runs: 10 },
  },
  {
    name: 'mirror.retry-outside-lock',
    description:
      'N3: the interval mirror (src/drivers/mirror/interval-mirror.ts) checks mmu_interval_read_retry() before taking the lock its invalidate callback takes',
    history: 'f95f51a4c335 "drm/amdgpu: Add notifier lock for KFD userptrs" (v6.2)',
    rule: 'coherence',
    reach: { scenario: 'interval-mirror', set: { op: 4 }, strategy: 'pct', seed: 1, runs: 50 },
  },
  {
    name: 'mirror.nonblock-sleeps',
    description:
      'N6: the interval mirror (src/drivers/mirror/interval-mirror.ts) takes its mutex with a sleeping lock even when the invalidation is not blockable',
    history: '93065ac753e4 "mm, oom: distinguish blockable mode for mmu notifiers" (2018)',
    rule: 'sleep-in-atomic',
    reach: { scenario: 'interval-mirror', set: { op: 6 }, strategy: 'pct', seed: 1, runs: 10 },
  },
  {
    name: 'kvm.retry-ignores-in-progress',
    description:
      'a KVM-style fault commits when the sequence did not move, ignoring an invalidation in progress',
    history:
      'mmu_invalidate_retry() must check mmu_invalidate_in_progress as well as the sequence (KVM, copied by ODP 882214e2b128)',
    rule: 'coherence',
    reach: { scenario: 'kvm-mirror', set: {}, strategy: 'pct', seed: 1, runs: 1000 },
  },
  {
    name: 'dmirror.no-read-retry',
    description:
      'the dmirror fault path commits the hmm_range_fault snapshot without mmu_interval_read_retry()',
    history:
      'the collision-retry protocol of 99cb252f5e68: read_begin/read_retry must bracket every commit',
    rule: 'coherence',
    reach: { scenario: 'dmirror-race', set: {}, strategy: 'pct', seed: 1, runs: 200 },
  },
  {
    name: 'dmirror.set-seq-outside-lock',
    description:
      'the dmirror invalidate callback calls mmu_interval_set_seq() after dropping its mutex',
    history:
      'mmu_interval_set_seq() must be serialised with read_retry by the driver lock (the rule documented above mmu_interval_read_begin() in include/linux/mmu_notifier.h)',
    rule: 'coherence',
    reach: { scenario: 'dmirror-race', set: {}, strategy: 'random', seed: 1, runs: 50 },
  },
  {
    name: 'dmirror.zap-after-unlock',
    description:
      'the dmirror invalidate callback drops its mutex and returns before the device entries are erased (deferred work erases them)',
    history:
      'ops->invalidate must stop device use of the range before it returns (the interval notifier contract in include/linux/mmu_notifier.h)',
    rule: 'coherence',
    reach: { scenario: 'dmirror-race', set: {}, strategy: 'pct', seed: 1, runs: 10 },
  },
  {
    name: 'mm.devmem-fault-unlocked',
    description:
      'a CPU fault on a device-private entry calls migrate_to_ram() holding neither the page lock nor a reference (and passes no fault_page)',
    history:
      '16ce101db85d "mm/memory.c: fix race when faulting a device private page" (v6.1): a concurrent migration could free the page and its driver data first; 1afaeb8293c9 later made the fault trylock it too',
    rule: 'use-after-free',
    reach: { scenario: 'dmirror-race', set: { migrate: 1 }, strategy: 'pct', seed: 1, runs: 700 },
  },
  {
    name: 'mm.migrate-hole-no-notify',
    description:
      'migrate_vma_pages() inserts a new page over a hole or the zero page without its MIGRATE invalidation',
    history:
      '8315ada7f095 "mm/migrate: allow migrate_vma() to alloc new page on empty entry" (2017) put the notifier around the insertion; 5e5dda81a0df (v5.11) made it MIGRATE with the owner. Without it a device that mirrored the zero page after the collect keeps it',
    rule: 'coherence',
    reach: { scenario: 'dmirror-race', set: { migrate: 1 }, strategy: 'pct', seed: 4, runs: 1000 },
  },
  {
    name: 'dmirror.own-migrate-blinds-fault',
    description:
      "dmirror's invalidate callback returns at once for its own MIGRATE event (as lib/test_hmm.c does), so its concurrent fault commits the page the migration replaced",
    history:
      "lib/test_hmm.c's own-migration skip (the MIGRATE event and its owner came with 998427b3ad2c in 2020): found by odpsim's sweep of dmirror-race migrate=1; the model's dmirror tracks its own migrations and the fault waits or retries",
    rule: 'coherence',
    reach: { scenario: 'dmirror-race', set: { migrate: 1 }, strategy: 'pct', seed: 1, runs: 200 },
  },
  {
    name: 'dmirror.migrate-map-unchecked',
    description:
      'dmirror_migrate_finalize_and_map() stores the migrated pages without checking for an invalidation since the migration began (as lib/test_hmm.c does)',
    history:
      "lib/test_hmm.c: a racing munmap or DONTNEED zaps the migration entry, migrate_vma_finalize() frees the new device page, and the table still maps it; found by odpsim's sweep of dmirror-race migrate=1",
    rule: 'use-after-free',
    reach: { scenario: 'dmirror-race', set: { migrate: 1 }, strategy: 'pct', seed: 1, runs: 100 },
  },
  {
    name: 'mm.thp-split-no-notify',
    description:
      '__split_huge_pmd() runs without its CLEAR invalidation of the 2 MiB range, so a device that mirrored the huge zero page keeps those frames after the PTEs move to the zero page',
    history:
      '2ec74c3ef2d8 "mm: move all mmu notifier invocations to be done outside the PT lock" (v3.7) removed pmdp_splitting_flush_notify() and put a range_start/end pair around the split instead; the mutant is the split with neither',
    rule: 'coherence',
    reach: { scenario: 'default', set: {}, strategy: 'pct', seed: 1, runs: 5 },
  },
  {
    name: 'mm.fork-copies-exclusive',
    description:
      "fork copies a device-exclusive entry into the child as a present read-only entry and leaves the parent's in place, so the parent's next access restores a writable entry to a page the child maps",
    history:
      'copy_nonpresent_pte() has restored the parent\'s entry and copied it as present since b756a3b5e7ea "mm: Device exclusive memory access" (v5.14); 9a914592140e (v6.15) fixed the writability of restore_exclusive_pte()',
    rule: 'cow',
    reach: { scenario: 'default', set: {}, strategy: 'pct', seed: 2, runs: 20 },
  },
  {
    name: 'dmirror.nonblock-mutex',
    description:
      'the dmirror invalidate callback sleeps on its mutex even for a non-blockable range',
    history: '93065ac753e4 "mm, oom: distinguish blockable mode for mmu notifiers" (2018); N6',
    rule: 'sleep-in-atomic',
    reach: {
      scenario: 'itree-nonblock-leak',
      set: { dmirror: 1, fix: 1 },
      strategy: 'pct',
      seed: 1,
      runs: 10,
    },
  },
  {
    name: 'odp2014.activation-race',
    description:
      'O1: an ODP umem registered while a notifier runs joins no_private_counters without re-checking the count, so the ending notifier may find the list empty and never activate it; its faults retry for ever',
    history:
      'the 2014 design as shipped (882214e2b128, 3.19–4.19); ca748c39ea3f "RDMA/umem: Get rid of per_mm->notifier_count" (v4.20) removed the scheme',
    rule: 'liveness',
    reach: {
      scenario: 'rdma-odp',
      set: { ops: 0, rounds: 0 },
      strategy: 'random',
      seed: 5,
      runs: 300,
      message: 'although no invalidation',
    },
  },
  {
    name: 'odp.nonblock-start-leak',
    description:
      "O2: an ODP context's non-blockable invalidate_range_start that finds an overlapping umem returns EAGAIN still holding umem_rwsem for read",
    history:
      '7608bf40cf24 "RDMA/odp: Fix missed unlock in non-blocking invalidate_start" (v5.3; the bug from 4.20)',
    rule: 'lock-order',
    // The leaked read lock may first show as its task returning with it held.
    symptoms: ['exit-holding-lock'],
    reach: {
      scenario: 'rdma-odp',
      set: { teardown: 1 },
      strategy: 'pct',
      seed: 1,
      runs: 50,
      message: 'umem_rwsem(read)',
    },
  },
  {
    name: 'mlx5.unserialized-zap',
    description:
      "O3: mlx5's invalidation zaps an ODP MR's MTT entries without umem_mutex, so two invalidations of one MR post overlapping UMRs",
    history: '"IB/mlx5: Prevent concurrent MR updates during invalidation" (Moni Shoua, v5.3)',
    rule: 'serialization',
    reach: {
      scenario: 'rdma-odp',
      set: { rounds: 3, pressure: 60 },
      strategy: 'random',
      seed: 3,
      runs: 20,
      message: 'are in flight at once',
    },
  },
  {
    name: 'mlx5.shared-access-mask',
    description:
      "O4: a WQE page fault keeps one access mask for all its data segments, so a writable MR's WRITE bit has the next segment's read-only MR faulted in for write (GUP breaks COW of pages registered read-only, or fails on a read-only mapping)",
    history:
      '1abe186ed8a6 "IB/mlx5: Reset access mask when looping inside page fault handler" (v5.2)',
    rule: 'permission',
    reach: {
      scenario: 'rdma-odp',
      set: {},
      strategy: 'pct',
      seed: 1,
      runs: 20,
      message: 'but its region was registered without write access',
    },
  },
  {
    name: 'odp.no-read-retry',
    description:
      'ib_umem_odp_map_dma_and_lock() maps the pages hmm_range_fault() returned without mmu_interval_read_retry() under umem_mutex, so an invalidation that ran meanwhile is missed',
    history:
      'the collision check of the interval-notifier protocol (99cb252f5e68), which umem_odp follows since 36f30e486dce (v5.10)',
    rule: 'coherence',
    reach: {
      scenario: 'rdma-odp',
      set: { design: 2020 },
      strategy: 'random',
      seed: 1,
      runs: 200,
      message: 'but the CPU entry is not present',
    },
  },
  {
    name: 'odp.set-seq-outside-lock',
    description:
      "mlx5's invalidate op calls mmu_interval_set_seq() after dropping umem_mutex, so a fault that takes the mutex in between passes its read_retry and maps pages the CPU is losing",
    history:
      'the driver-lock rule of mmu_interval_set_seq() (f95f51a4c335 fixed the same in amdgpu)',
    rule: 'coherence',
    reach: {
      scenario: 'rdma-odp',
      set: { design: 2020 },
      strategy: 'random',
      seed: 1,
      runs: 250,
      message: 'after the CPU entry was cleared',
    },
  },
  {
    name: 'odp.prefetch-without-ref',
    description:
      'an asynchronous ibv_advise_mr() work item holds no usecount on its MRs, so deregistration does not wait for it and the work faults through a freed MR',
    history:
      'the MR references of mlx5 prefetch work (init_prefetch_work, a6bc3875f176 "IB/mlx5: Protect against prefetch of invalid MR", 2019; later a usecount on each MR)',
    rule: 'serialization',
    reach: {
      scenario: 'rdma-odp',
      set: { design: 2020 },
      strategy: 'random',
      seed: 1,
      runs: 100,
      message: 'posts a translation update after its translation table was destroyed',
    },
  },
  {
    name: 'odp.map-mmput-sync',
    description:
      "ib_umem_odp_map_dma_and_lock() drops its mm reference with mmput() while holding umem_mutex: when it is the last one, exit_mmap()'s release invalidates the umem and takes umem_mutex again in the same task",
    history:
      '36f30e486dce (v5.10) to 85eaeb5058f0 (v6.0, "IB/core: Fix a nested dead lock as part of ODP flow", which moved to mmput_async()); found again by the swarm scenario',
    rule: 'recursive-lock',
    reach: { scenario: 'swarm', set: {}, strategy: 'random', seed: 1, runs: 300 },
  },
  {
    name: 'odp.implicit-child-reclaim-race',
    description:
      "the work freeing an implicit ODP child that an invalidation emptied does not wait for the child's usecount, so a fault still using the child runs on a freed MR",
    history:
      'the usecount wait of free_implicit_child_mr_work; the reclaim of implicit children raced before, e.g. de5ed007a03d "IB/mlx5: Fix implicit ODP race" (2020)',
    rule: 'lifetime',
    reach: {
      scenario: 'rdma-odp',
      set: { design: 2020 },
      strategy: 'pct',
      seed: 1,
      runs: 50,
      message: 'is freed while 1 reference(s) are outstanding',
    },
  },
  {
    name: 'rxe.recheck-keeps-lock',
    description:
      "O5: rxe_odp_map_range_and_lock() returns EFAULT with umem_mutex held when the pages are still insufficient after the fault, so the MR's next invalidation (a munmap, the exit) blocks for good",
    history:
      '3c68cf68233e "IB/rxe: ODP: Fix missing umem_odp->umem_mutex unlock" (Li Zhijian, Dec 2025; the bug from 6.14)',
    rule: 'deadlock',
  },
  {
    name: 'mmapio.disassociate-no-fault',
    description:
      'M1: VMAs of device memory have no ->fault, so a touch after disassociation zapped them gets SIGBUS where the zero page or the dummy page is due',
    history:
      '67f269b37f9b "RDMA/ucontext: Fix regression with disassociate" (v5.1) fixed 5f9794dc94 (v4.20); era=420 runs the same code',
    rule: 'io-semantics',
    reach: {
      scenario: 'mmap-io-unplug',
      set: {},
      strategy: 'pct',
      seed: 1,
      runs: 10,
      message: 'SIGBUS, expected the',
    },
  },
  {
    name: 'mmapio.remove-without-lock',
    description:
      'M2: rdma_user_mmap_entry_remove() sets driver_removed without the xarray lock, so a racing get takes a reference after remove returned',
    history:
      '6b3712c0246c "RDMA/core: Ensure that rdma_user_mmap_entry_remove() is a fence" (v5.6); era≤505 runs the same code',
    rule: 'lifetime',
    reach: {
      scenario: 'mmap-io-unplug',
      set: {},
      strategy: 'pct',
      seed: 2,
      runs: 400,
      message: 'a lookup found it after it was revoked',
    },
  },
  {
    name: 'mmapio.open-blocking-read',
    description:
      "M3: rdma_umap_open() takes hw_destroy_rwsem with a blocking down_read, which deadlocks against a destruction holding it for write and waiting for the forking mm's mmap_lock",
    history:
      'the trylock of 5f9794dc94 "RDMA/ucontext: Add a core API for mmaping driver IO memory" (v4.20)',
    rule: 'lock-order',
    reach: {
      scenario: 'mmap-io-unplug',
      set: {},
      strategy: 'pct',
      seed: 1,
      runs: 10,
      message: 'hw_destroy_rwsem',
    },
  },
  {
    name: 'mmapio.no-open-on-fork',
    description:
      "rdma_umap_open() does not track a fork's copy of a VMA, which keeps the device entries fork copied: disassociation never zaps it",
    history:
      'the per-driver VMA tracking that 5f9794dc94 (v4.20) replaced did not follow copies of a VMA',
    rule: 'io-semantics',
    reach: {
      scenario: 'mmap-io-unplug',
      set: {},
      strategy: 'pct',
      seed: 1,
      runs: 10,
      message: 'expected SIGBUS (the VMA is untracked',
    },
  },
];

/** Checks mutant names; an unknown one is an EINVAL listing the known ones. */
export function checkMutants(names: readonly string[]): string[] {
  for (const n of names) {
    if (!MUTANTS.some((m) => m.name === n)) {
      throw new Errno(
        'EINVAL',
        `unknown mutant ${JSON.stringify(n)} (known: ${MUTANTS.map((m) => m.name).join(', ')})`,
      );
    }
  }
  return [...names];
}
