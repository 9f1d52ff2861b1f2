// Bad inputs the model still mishandles in src/mm (which this suite does not change): the
// property leaves each out until its fix lands. Every tag was reported with a failing test
// and the fix; when a fix is in, delete its tag and the property covers the input again.
import { MAP_ANONYMOUS, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.ts';

/** The fixes the property waits for. */
export const AWAITING_FIX: ReadonlySet<string> = new Set<string>([]);

const awaiting = (tag: string) => AWAITING_FIX.has(tag);

/**
 * mmap(MAP_POPULATE) whose populate would fault where no page can be: PROT_NONE, past the EOF
 * of a file (`fileSize`, null for a device file), or (shared anonymous) past the EOF of its
 * shmem object.
 */
export function populateFails(
  prot: unknown,
  flags: number,
  fileSize: number | null,
  offset: unknown,
  len: unknown,
): boolean {
  const off = offset ?? 0;
  if (awaiting('shared-anon-offset') && flags & MAP_ANONYMOUS && flags & MAP_SHARED && off !== 0)
    return true;
  if (!awaiting('populate-errors')) return false;
  if (typeof prot !== 'number' || (prot & (PROT_READ | PROT_WRITE)) === 0) return true;
  if (fileSize === null || flags & MAP_ANONYMOUS) return false;
  return typeof off !== 'number' || typeof len !== 'number' || off + len > fileSize;
}

/** A prot or flags mmap()/mprotect() would crash on while refusing it. */
export function crashesMessage(v: unknown): boolean {
  return awaiting('prot-flags-type') && typeof v !== 'number';
}

/** An integer whose bits above 31 (or sign) a 32-bit check would drop. */
export function beyond32Bits(v: unknown): boolean {
  return awaiting('high-bits') && Number.isInteger(v) && ((v as number) | 0) !== v;
}

/** A range hmmRange() cannot size its arrays for: not two safe integers a whole number of pages apart. */
export function unsizedHmmRange(start: unknown, end: unknown): boolean {
  if (!awaiting('hmm-range')) return false;
  const safe = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!safe(start) || !safe(end)) return true;
  const [s, e] = [start as number, end as number];
  return e > s && (e - s) % PAGE_SIZE !== 0;
}

/** A cpuRead() length too large for its result array. */
export function unallocatableRead(len: unknown): boolean {
  return awaiting('cpu-read-huge') && typeof len === 'number' && len > 2 ** 31 - PAGE_SIZE;
}

/** Words mremap()'s messages may use beyond its name while its ENOMEM says "mmap". */
export function mremapWords(): string[] {
  return awaiting('mremap-names-mmap') ? ['mmap: no free range'] : [];
}
