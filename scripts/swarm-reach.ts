// Finds, for each mutant, the first of a fixed list of (strategy, seed) explorations of `swarm`
// that finds it under its own rule within BUDGET runs, and prints the table
// test/check/swarm-mutants.test.ts keeps (`node --import tsx scripts/swarm-reach.ts`).
import { Exploration } from '../src/check/explore.ts';
import { MUTANTS, mutantRules } from '../src/check/mutants.ts';
import { worldBuilder, worldSpec } from '../src/cli/world.ts';

const BUDGET = Number(process.argv[2] ?? 1500);
const TRIES = [
  ['random', 1],
  ['pct', 1],
  ['random', 2],
  ['pct', 2],
  ['random', 3],
  ['pct', 3],
] as const;
const build = worldBuilder(worldSpec('swarm', {}));
const only = process.argv[3];
for (const m of MUTANTS) {
  if (only !== undefined && m.name !== only) continue;
  const rules = mutantRules(m);
  let line = `  // ${m.name}: not found in ${BUDGET} runs by any of ${TRIES.length} explorations`;
  for (const [strategy, seed] of TRIES) {
    const x = new Exploration(build, {
      strategy,
      seed,
      runs: BUDGET,
      mutants: [m.name],
      minimise: false,
    });
    let found = -1;
    for (let i = 0; i < BUDGET && found < 0; i++) {
      const r = x.run(i);
      if (!r.ok && rules.includes(r.bug?.rule ?? '')) found = i;
    }
    if (found >= 0) {
      line = `  ['${m.name}', '${strategy}', ${seed}, ${found + 1}],`;
      break;
    }
  }
  console.log(line);
}
