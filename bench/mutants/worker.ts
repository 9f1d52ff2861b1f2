// One row of `npm run bench:mutants`: explores a mutant (or the correct code) against a
// scenario for each seed and strategy, and prints what it found as JSON on its last line.
// Args: <scenario> <mutant|-> <budget> <strategy:seed,...> <set JSON> <rules, comma-separated>
// A failure under another rule than the mutant's is not the mutant: it is recorded (a bug of the
// correct code, or a symptom worth a look) and the hunt goes on.
import { Exploration } from '../../src/check/explore.ts';
import { worldBuilder, worldSpec } from '../../src/cli/world.ts';

/** One exploration's outcome. */
export interface Hunt {
  readonly strategy: string;
  readonly seed: number;
  /** Runs made: to the first failure, or the whole budget. */
  readonly runs: number;
  readonly found: boolean;
  readonly rule: string | null;
  /** CPU seconds to the failing run (or over the budget), without minimisation. */
  readonly cpuS: number;
  /** The minimised failure: steps, preemptions, and the world's operations kept of all. */
  readonly steps: number;
  readonly preemptions: number;
  readonly kept: number | null;
  readonly operations: number | null;
  readonly minimiseS: number;
  /** Failures under other rules on the way (run index and message). */
  readonly others: readonly string[];
}

const [scenario, mutant, budgetArg, plan, setArg, rulesArg] = process.argv.slice(2);
const rules = (rulesArg ?? '').split(',').filter((r) => r !== '');
const budget = Number(budgetArg);
const set = setArg === undefined ? {} : (JSON.parse(setArg) as Record<string, number>);
const build = worldBuilder(worldSpec(scenario!, set));
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const hunts: Hunt[] = [];
for (const entry of plan!.split(',')) {
  const [strategy, seedArg] = entry.split(':');
  const seed = Number(seedArg);
  const x = new Exploration(build, {
    strategy: strategy as 'pct' | 'random',
    seed,
    runs: budget,
    mutants: mutant === '-' ? [] : [mutant!],
  });
  const t0 = cpu();
  let i = 0;
  let failed = null;
  const others: string[] = [];
  for (; i < budget && failed === null; i++) {
    const r = x.run(i);
    if (r.ok) continue;
    if (rules.length === 0 || rules.includes(r.bug?.rule ?? '')) failed = r;
    else others.push(`run ${i}: ${r.bug?.message ?? 'exception'}`);
  }
  const cpuS = cpu() - t0;
  const t1 = cpu();
  const f = failed === null ? null : x.report(failed, i - 1);
  hunts.push({
    strategy: strategy!,
    seed,
    runs: i,
    found: f !== null,
    rule: f?.rule ?? null,
    cpuS,
    steps: f?.steps ?? 0,
    preemptions: f?.preemptions ?? 0,
    kept: f?.world?.kept ?? null,
    operations: f?.world?.operations ?? null,
    minimiseS: cpu() - t1,
    others,
  });
}
console.log(JSON.stringify(hunts));
