import { Errno } from '../lib/errors.ts';

/** A documented deviation from the correct protocol that reproduces a historical bug. */
export interface MutantInfo {
  /** The name worlds enable it by (`mutants: [name]`). */
  readonly name: string;
  /** What the deviating code does. */
  readonly description: string;
  /** The commit or design history it reproduces. */
  readonly history: string;
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
    history: 'the page-freeing rule of mm-paths.md §4 (a device can DMA into a reused page)',
  },
  {
    name: 'mm.notifier-under-ptl',
    description: 'the COW fault calls invalidate_range_start/end with the page-table spinlock held',
    history:
      'before 2ec74c3ef2d8 (v3.7), notifiers ran under the PT lock so no callback could sleep',
  },
  {
    name: 'kvm.retry-ignores-in-progress',
    description:
      'a KVM-style fault commits when the sequence did not move, ignoring an invalidation in progress',
    history:
      'mmu_invalidate_retry() must check mmu_invalidate_in_progress as well as the sequence (KVM, copied by ODP 882214e2b128)',
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
