import { OdpsimError } from '../lib/errors.ts';

/**
 * The rules a {@link KernelBug} can name. The kernel layer raises the first group; oracles and
 * drivers in higher layers raise their own rule names (any string is accepted).
 */
export type KernelRule =
  | 'sleep-in-atomic'
  | 'lock-order'
  | 'recursive-lock'
  | 'deadlock'
  | 'unlock-not-held'
  | 'unlock-not-owner'
  | 'exit-holding-lock'
  | 'exit-in-srcu'
  | 'exit-in-atomic'
  | 'use-after-free'
  | 'step-limit'
  | 'exception'
  | 'warn'
  | (string & {});

/** Where a bug happened: the task and the locks it held then. */
export interface BugSite {
  readonly task: string | null;
  readonly held: readonly string[];
}

/** Where a new bug is recorded as soon as it is raised (the running kernel's first-bug slot). */
let sink: ((bug: KernelBug) => void) | null = null;

/**
 * @internal Sets the function told of every bug at its creation (the kernel running now),
 * returning the previous one to restore.
 */
export function setBugSink(
  next: ((bug: KernelBug) => void) | null,
): ((bug: KernelBug) => void) | null {
  const prev = sink;
  sink = next;
  return prev;
}

/**
 * A broken kernel rule: BUG_ON, WARN_ON, a lockdep splat or an oracle violation. It ends the
 * run and becomes a report with the schedule that led to it. The running kernel records it as
 * it is created, so model code that catches it (a clean-up path) can neither hide nor replace it.
 */
export class KernelBug extends OdpsimError {
  override name = 'KernelBug';
  readonly rule: KernelRule;
  readonly task: string | null;
  readonly held: readonly string[];
  /** The bare description, without the site prefix the message carries. */
  readonly detail: string;

  constructor(rule: KernelRule, detail: string, site: BugSite = { task: null, held: [] }) {
    const where = site.task === null ? '' : ` in task ${site.task}`;
    const locks = site.held.length > 0 ? ` holding [${site.held.join(', ')}]` : '';
    super(`BUG ${rule}${where}${locks}: ${detail}`);
    this.rule = rule;
    this.task = site.task;
    this.held = site.held;
    this.detail = detail;
    sink?.(this);
  }
}

/** True when `e` is a {@link KernelBug}, optionally for the given rule. */
export function isKernelBug(e: unknown, rule?: KernelRule): e is KernelBug {
  return e instanceof KernelBug && (rule === undefined || e.rule === rule);
}
