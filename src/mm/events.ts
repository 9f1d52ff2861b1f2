/** Trace events of the mm layer (merged into the kernel's TraceEventMap). */
declare module '../kernel/trace.ts' {
  interface TraceEventMap {
    /** A frame left the allocator. */
    'page-alloc': { pfn: number; gen: number; kind: string };
    /** A frame went back to the allocator. */
    'page-free': { pfn: number; gen: number };
    /** A CPU PTE was installed or changed: it now maps (pfn, gen) with these rights. */
    'pte-set': {
      mm: number;
      addr: number;
      pfn: number;
      gen: number;
      readable: boolean;
      writable: boolean;
    };
    /**
     * A CPU PTE stopped mapping a frame: cleared, or (`to`) replaced by a swap or migration
     * entry.
     */
    'pte-clear': { mm: number; addr: number; pfn: number; gen: number; to?: 'swap' | 'migration' };
    /** A CPU TLB flush of [start, end) completed on every CPU of the mm (and the secondary-TLB hook was called). */
    'tlb-flush': { mm: number; start: number; end: number };
    /** A CPU TLB or a device IOTLB cached a translation after a walk of the CPU page table. */
    'tlb-fill': {
      tlb: string;
      kind: 'cpu' | 'iotlb';
      mm: number;
      addr: number;
      pfn: number;
      gen: number;
      writable: boolean;
    };
    /** A TLB dropped one translation on its own (eviction when full). */
    'tlb-drop': { tlb: string; mm: number; addr: number };
    /** A device IOTLB invalidated [start, end) of mm (its driver's secondary-TLB hook, or unbind). */
    'iotlb-flush': { tlb: string; mm: number; start: number; end: number };
    /**
     * A call that took rights away from [start, end) returns (munmap, mprotect, madvise, mremap): from
     * here no cached translation of the range may grant more than both its CPU entry and what the
     * call left the range.
     */
    'tlb-revoked': {
      mm: number;
      start: number;
      end: number;
      call: string;
      /** What the call left the range (mprotect: its new protection; the others: none). */
      leaves: 'none' | 'read' | 'write';
    };
    /** A CPU page fault was taken (handle_mm_fault()). */
    'cpu-fault': { mm: number; addr: number; write: boolean };
    /**
     * A device fault pass began (a driver's fault path over [start, end)), for write or not;
     * `regionWritable` false when the device's region (an MR) was registered without write
     * access (absent: writable).
     */
    'dev-fault': {
      dev: string;
      mm: number;
      start: number;
      end: number;
      write: boolean;
      regionWritable?: boolean;
    };
    /** A device fault pass had to retry (the sequence moved or hmm_range_fault said EBUSY). */
    'dev-retry': { dev: string; mm: number; start: number; reason: string };
    /** A CPU access touched a frame through a PTE. */
    'cpu-access': { mm: number; addr: number; pfn: number; gen: number; write: boolean };
    /** mmu_notifier_invalidate_range_start() begins for a range. */
    'mmu-start': {
      mm: number;
      start: number;
      end: number;
      event: string;
      blockable: boolean;
      id: number;
    };
    /** The start finished: `ok` false when a non-blockable start failed with EAGAIN. */
    'mmu-start-done': { mm: number; id: number; ok: boolean };
    /** mmu_notifier_invalidate_range_end() for a range. */
    'mmu-end': { mm: number; start: number; end: number; event: string; id: number };
    /** An interval notifier's ->invalidate is called (subscription start, current seq). */
    'itree-invalidate': {
      mm: number;
      start: number;
      end: number;
      event: string;
      seq: number;
      sub: number;
    };
    /**
     * A reader sampled an invalidation sequence before reading the CPU page table: `fn` names
     * the read (mmu_interval_read_begin() of the interval subscription `owner`, or a classic
     * subscriber's own counter, KVM's mmu_invalidate_seq); `waited` when it first slept until
     * an invalidation ended.
     */
    'seq-begin': { mm: number; owner: string; fn: string; seq: number; waited: boolean };
    /**
     * A reader checked its sample `seq` against the current sequence `cur` (`fn`:
     * mmu_interval_read_retry(), mmu_interval_check_retry(), KVM's mmu_invalidate_retry(), which
     * also counts the invalidations in progress); `retry` true when the work must be redone.
     */
    'seq-check': {
      mm: number;
      owner: string;
      fn: string;
      seq: number;
      cur: number;
      retry: boolean;
      inProgress?: number;
    };
    /**
     * The writer side of a sequence: an invalidation began (`phase` 'start') or ended ('end')
     * for `owner`, which now has sequence `seq` and `inProgress` invalidations running (the
     * interval tree's mn_itree_inv_end() making the sequence even; KVM's
     * mmu_invalidate_in_progress and mmu_invalidate_seq).
     */
    'seq-invalidate': {
      mm: number;
      owner: string;
      phase: 'start' | 'end';
      seq: number;
      inProgress: number;
    };
    /** mmu_notifier_release() at exit. */
    'mmu-release': { mm: number };
    /**
     * An mm path (an operation of the mm, `fn` its Linux function name, one of MM_PATHS in
     * mm/mm-path.ts) began or ended in the acting task, on address space `mm` (null for a path
     * over the whole machine: reclaim, migration) of machine `machine` (its index).
     */
    'mm-path': { fn: string; phase: 'begin' | 'end'; mm: number | null; machine: number };
    /**
     * The notifier core is about to call `callback` (invalidate_range_start / _end, an interval
     * subscription's invalidate, release, arch_invalidate_secondary_tlbs, the aging ones) of a
     * subscriber of `client` kind (the driver, see mm/mmu-notifier-clients.ts; `unnamed` when
     * its ops name none), for a range invalidated because of `event` (null for a callback
     * without a range).
     */
    'mn-callback': { client: string; callback: string; event: string | null; mm: number };
    /**
     * A device established a translation from a snapshot of (pfn, gen). `regionWritable` says
     * whether the device region it belongs to (an MR's access rights) allows writes at all.
     */
    'dev-map': {
      dev: string;
      mm: number;
      addr: number;
      pfn: number;
      gen: number;
      writable: boolean;
      regionWritable: boolean;
    };
    /** A device translation-table update (a UMR work request) was posted, or completed. */
    'dev-update': { dev: string; phase: 'begin' | 'end' };
    /**
     * A driver's own migration of [start, end) of `mm` (its MIGRATE invalidation skips it)
     * began or ended: in between the driver keeps this table's translations of the range
     * itself, and at the end they must agree with the CPU entries.
     */
    'dev-own-migrate': {
      dev: string;
      mm: number;
      start: number;
      end: number;
      phase: 'begin' | 'end';
    };
    /** A device translation table was destroyed (its key can no longer be used or updated). */
    'dev-retire': { dev: string };
    /** A device accessed a frame it holds a reference to (a pinned region: no CPU mirror). */
    'dev-dma': { dev: string; pfn: number; gen: number; write: boolean };
    /** A device dropped its translation of an address. */
    'dev-unmap': { dev: string; mm: number; addr: number };
    /** A device read or wrote through its translation. */
    'dev-access': { dev: string; mm: number; addr: number; write: boolean };
    /**
     * A driver started (`link`) or stopped (`unlink`) tracking a VMA it maps device memory
     * into (rdma_umap_priv on a ufile's umaps list): a tracked VMA must be unlinked before it
     * is freed.
     */
    'vma-track': { tracker: string; mm: number; vma: number; op: 'link' | 'unlink' };
    /** A VMA was removed and freed (after its ->close). */
    'vma-free': { mm: number; vma: number };
    /**
     * Device frames were revoked from the mappings of `file`, or (file null) are gone with
     * their device (see Machine.revokeDevicePfns).
     */
    'pfn-revoke': { first: number; count: number; file: string | null };
    /** An address space was created or destroyed (mm_count reached 0). */
    'mm-create': { mm: number };
    'mm-free': { mm: number };
  }
}

export {};
