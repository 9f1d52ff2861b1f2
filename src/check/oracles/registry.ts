import type { Kernel } from '../../kernel/kernel.ts';

/**
 * One check whose verdict a run report shows: an oracle watching the trace, or a scenario's
 * end-to-end data check. Worlds register theirs while they are built; reports (the CLI) read
 * them back with {@link registeredOracles} after the run, so a scenario's `build` needs to
 * return nothing.
 */
export interface OracleEntry {
  /** Short name in reports (`coherence`, `pairing`, `leaks`, `data`). */
  readonly name: string;
  /** One line: what it checks. */
  readonly description: string;
  /**
   * The KernelBug rules it raises: a run that ends with a bug of one of these rules is this
   * check's failure (rules no entry claims are the kernel's own: lockdep, context, deadlock).
   */
  readonly rules: readonly string[];
  /** Checks performed so far (events inspected, values compared). */
  checks(): number;
}

const registries = new WeakMap<Kernel, OracleEntry[]>();

/** Registers a check of the world built on `k`, for reports. */
export function registerOracle(k: Kernel, entry: OracleEntry): void {
  let list = registries.get(k);
  if (list === undefined) {
    list = [];
    registries.set(k, list);
  }
  list.push(entry);
}

/** The checks registered on `k`, in registration order. */
export function registeredOracles(k: Kernel): readonly OracleEntry[] {
  return registries.get(k) ?? [];
}
