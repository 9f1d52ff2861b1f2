/**
 * mm paths: the operations of the mm, each traced under its Linux function name by an
 * `mm-path` event when it begins and when it ends (even by a throw), so a run shows which
 * paths ran and which overlapped (see check/coverage.ts). Tracing never yields: a path traced
 * or not runs the same schedule.
 */
import type { Co } from '../kernel/task.ts';
import type { Machine } from './machine.ts';
import type { Mm } from './mm.ts';
import './events.ts';

/** Every mm path the model traces, by Linux function name, grouped by what they do. */
export const MM_PATHS = [
  // The address-space calls (mmap_lock held or taken).
  'do_mmap',
  'do_vmi_munmap',
  'do_mprotect_pkey',
  'do_mremap',
  'move_vma',
  'madvise_dontneed_single_vma',
  'madvise_free_single_vma',
  'dup_mmap',
  'exit_mmap',
  // Faults and page-table walks on behalf of the CPU or a device.
  'handle_mm_fault',
  'get_user_pages',
  'pin_user_pages',
  'hmm_range_fault',
  // Memory pressure: reclaim, migration, the OOM reaper.
  'shrink_folio_list',
  'try_to_unmap',
  'migrate_pages',
  'oom_reap_task_mm',
  // Device-private memory: migration to a device and back, and a driver's eviction.
  'migrate_vma_setup',
  'migrate_device_range',
  // Transparent huge pages: a PMD-mapped fault, and a PMD split.
  'do_huge_pmd_anonymous_page',
  '__split_huge_pmd',
  // Files and device mappings.
  'unmap_mapping_range',
  'truncate_pagecache',
  'remap_pfn_range',
  'zap_vma_ptes',
  // Notifier subscriptions and their teardown at exit.
  'mmu_notifier_register',
  'mmu_notifier_unregister',
  'mmu_notifier_unregister_no_release',
  'mmu_notifier_get',
  'mmu_notifier_get_locked',
  'mmu_notifier_put',
  'mmu_interval_notifier_insert',
  'mmu_interval_notifier_insert_locked',
  'mmu_interval_notifier_remove',
  'mmu_notifier_release',
] as const;

/** Paths only a setting or a design swarm does not draw reaches (as MN_CONDITIONS for callbacks). */
export const MM_PATH_CONDITIONS: Readonly<Partial<Record<MmPathName, string>>> = {
  mmu_notifier_unregister_no_release:
    'in the interim ODP design (rdma-odp --set design=2018), which swarm does not draw',
  migrate_vma_setup:
    'with device-private memory (dmirror MIGRATE_TO_DEV, the default scenario), which swarm does not draw yet',
  migrate_device_range:
    'when a dmirror device evicts its memory (RELEASE or close), which swarm does not draw yet',
  do_huge_pmd_anonymous_page:
    'with MADV_HUGEPAGE memory (the default scenario), which swarm does not draw yet',
  __split_huge_pmd:
    'with MADV_HUGEPAGE memory (the default scenario), which swarm does not draw yet',
};

/** What path `item` needs beyond correct code (MM_PATH_CONDITIONS); null: nothing. */
export function mmPathCondition(item: string): string | null {
  return (MM_PATH_CONDITIONS as Readonly<Record<string, string>>)[item] ?? null;
}

/** The kernel function name of an mm path. */
export type MmPathName = (typeof MM_PATHS)[number];

/**
 * Runs `co` as mm path `fn` of `where` (an address space, or a whole machine for reclaim and
 * migration): an `mm-path` begin event first, the end event after it returns or throws.
 */
export function* mmPath<T>(fn: MmPathName, where: Mm | Machine, co: Co<T>): Co<T> {
  const isMm = 'machine' in where;
  const machine = isMm ? where.machine : where;
  const bus = machine.kernel.trace;
  if (!bus.on) return yield* co;
  const mm = isMm ? where.id : null;
  bus.emit('mm-path', { fn, phase: 'begin', mm, machine: machine.index });
  try {
    return yield* co;
  } finally {
    if (bus.on) bus.emit('mm-path', { fn, phase: 'end', mm, machine: machine.index });
  }
}
