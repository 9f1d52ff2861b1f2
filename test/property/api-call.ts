// A command as a call of the public API: its arguments resolved against the world, what an
// error message may name, which errors Linux allows to leave work done behind, what success must
// look like, and what the world records afterwards. The calls themselves are planned in
// api-mm-calls.ts and api-driver-calls.ts.
import {
  type Co,
  MMAP_MIN_ADDR,
  type Mm,
  PAGE_SIZE,
  pageAlign,
  TASK_SIZE,
} from '../../src/index.ts';
import { isIndex, mappedPages } from './api-world.ts';

const P = PAGE_SIZE;

/**
 * A walk over more mapped pages than this is real work, not bad input: the runner skips it so
 * that the step limit only ever catches a hang.
 */
export const WALK_LIMIT_PAGES = 64;

/** Errors after which the page tables (CPU and device) may have changed. */
export const PARTIAL = new Set(['EFAULT', 'ENOMEM', 'EAGAIN', 'EBUSY', 'EPERM']);

/** One call of the API, ready to run. */
export interface Call {
  /** The API function, as reports name it. */
  readonly name: string;
  /** Words naming the call that an error message may use (its Linux name, its subject). */
  readonly words: readonly string[];
  /** The arguments, which a message may quote instead. */
  readonly args: readonly unknown[];
  /** Addresses the call works on: a message may name one of them. */
  readonly range: readonly [number, number] | null;
  /**
   * True when an error with this code may leave work done before it in the page tables (CPU
   * and device), as Linux does: a CPU access or a GUP faults pages in up to the hole it fails
   * at, madvise(2) applies the advice to the mapped parts before its ENOMEM. The VMAs never.
   */
  readonly partial: (code: string) => boolean;
  /** The call reports failure as a negative errno (an ioctl) rather than an Errno. */
  readonly returnsErrno: boolean;
  /** Why the call must fail whatever the world holds (an argument outside its contract), or null. */
  readonly invalid: string | null;
  run(): Co<unknown>;
  /** What success must look like: null when it does, else what is wrong. */
  check(result: unknown): string | null;
  /** Records the effect of a success in the world's pools. */
  commit(result: unknown): void;
}

const never = () => false;
const fine = () => null;
const nothing = () => {};

export function call(
  name: string,
  words: readonly string[],
  args: readonly unknown[],
  run: () => Co<unknown>,
  more: Partial<Omit<Call, 'name' | 'words' | 'args' | 'run'>> = {},
): Call {
  return {
    name,
    words,
    args,
    run,
    range: more.range ?? null,
    partial: more.partial ?? never,
    returnsErrno: more.returnsErrno ?? false,
    invalid: more.invalid ?? null,
    check: more.check ?? fine,
    commit: more.commit ?? nothing,
  };
}

export function rangeOf(start: unknown, len: unknown): [number, number] | null {
  return isIndex(start) && isIndex(len) ? [start, start + pageAlign(len)] : null;
}

/** True when [start, start + len) is a valid range over more mapped pages than a walk may take. */
export function longWalk(mm: Mm, start: unknown, len: unknown): boolean {
  if (!isIndex(start) || !isIndex(len) || start + len > TASK_SIZE) return false;
  return mappedPages(mm, start - (start % P), start + len) > WALK_LIMIT_PAGES;
}

/** A successful mmap or mremap: a page-aligned user range, all of it mapped. */
export function mapped(mm: Mm, len: unknown) {
  return (at: unknown): string | null => {
    const n = isIndex(len) ? pageAlign(len) : 0;
    if (!isIndex(at) || at % P !== 0 || at < MMAP_MIN_ADDR || at + n > TASK_SIZE)
      return `returned ${String(at)}, not a page-aligned user address`;
    if (!mm.covered(at, at + n)) return `returned ${at}, but [${at}, +${n}) is not mapped`;
    return null;
  };
}

export const mmWords = (mm: Mm) => [`mm${mm.id}`];
export const show = (v: unknown) => (typeof v === 'bigint' ? `${v}n` : String(v));

/** True for an integer in [0, max] whose bits all lie in `known`: flags as the kernel reads them. */
export function bitsIn(v: unknown, known: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= known && (v & ~known) === 0;
}

/** The first reason in `reasons` that holds, or null. */
export function firstOf(...reasons: [boolean, string][]): string | null {
  return reasons.find(([holds]) => holds)?.[1] ?? null;
}

export const unaligned = (v: unknown) => !isIndex(v) || v % P !== 0;
