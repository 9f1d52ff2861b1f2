// --cost and --costs, as `odpsim run` and `odpsim study` take them.
import { readFileSync } from 'node:fs';
import { type CostOverrides, resolveCosts } from '../cost/model.ts';
import { addCostAssignment, parseCostFile } from '../cost/parse.ts';
import { Errno } from '../lib/errors.ts';
import { UsageError } from './options.ts';

/** The cost overrides of --costs then --cost; a UsageError naming what was wrong. */
export function costOverrides(
  file: string | undefined,
  assignments: readonly string[],
): CostOverrides {
  try {
    let o: CostOverrides = {};
    if (file !== undefined) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw new UsageError(`--costs ${file}: cannot read (${(e as NodeJS.ErrnoException).code})`);
      }
      o = parseCostFile(text, file);
    }
    for (const a of assignments) o = addCostAssignment(o, a);
    // The values' own checks (a cost's least value, finite numbers) before anything runs.
    resolveCosts(o);
    return o;
  } catch (e) {
    if (e instanceof Errno) throw new UsageError(errnoDetail(e));
    throw e;
  }
}

/** An Errno's message without its code: a usage error says what was wrong, not EINVAL. */
export function errnoDetail(e: Errno): string {
  return e.message.slice(e.code.length + 2);
}
