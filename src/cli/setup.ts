// Resolving what a command runs; every rejection becomes a usage error.
import { checkMutants } from '../check/mutants.ts';
import { isErrno } from '../lib/errors.ts';
import type { WorldJson } from './json.ts';
import { MUTANT_SCENARIOS } from './mutant-scenarios.ts';
import { UsageError } from './options.ts';
import { type WorldSpec, worldSpec } from './world.ts';

/** A scenario with its parameters, and the mutants to enable. */
export interface Setup {
  readonly spec: WorldSpec;
  readonly mutants: readonly string[];
}

/** Runs `f`, turning an EINVAL (a bad name or value) into a {@link UsageError}. */
export function asUsage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (isErrno(e, 'EINVAL')) throw new UsageError(e.message.replace(/^EINVAL: /, ''));
    throw e;
  }
}

/** Resolves a scenario name, `--set` overrides and `--mutant` names. */
export function setup(
  name: string,
  overrides: Readonly<Record<string, number>>,
  mutants: readonly string[],
): Setup {
  return asUsage(() => ({ spec: worldSpec(name, overrides), mutants: checkMutants(mutants) }));
}

/** The common head of a JSON report. */
export function worldJson(s: Setup): WorldJson {
  return { scenario: s.spec.scenario.name, params: s.spec.params, mutants: s.mutants };
}

/** The first lines of a text report: what ran. */
export function describeSetup(s: Setup): string[] {
  const params = Object.entries(s.spec.params).map(([k, v]) => `${k}=${v}`);
  const lines = [
    `  scenario  ${s.spec.scenario.name}: ${s.spec.scenario.description}`,
    `  params    ${params.length > 0 ? params.join(' ') : '(none)'}`,
    `  mutants   ${s.mutants.length > 0 ? s.mutants.join(', ') : 'none (the correct protocol)'}`,
  ];
  const finding = s.spec.scenario.finding;
  if (finding === undefined) return lines;
  // A world that reproduces a kernel bug says so before its BUG line does.
  const clean = Object.entries(finding.clean);
  const fixed = clean.every(([k, v]) => s.spec.params[k] === v);
  const setting = clean.map(([k, v]) => `--set ${k}=${v}`).join(' ');
  lines.push(
    fixed
      ? `  finding   runs the proposed fix of ${finding.doc}`
      : `  finding   runs the kernel as it is: a known bug (${finding.rule}, ${finding.doc}); ${setting} runs the proposed fix`,
  );
  return lines;
}

/**
 * Refuses a mutant whose code the probe run never reached: exploring it would explore the
 * correct code and report it clean. Names the scenarios that do reach it.
 */
export function refuseUnreached(s: Setup, sites: ReadonlySet<string>): void {
  const missing = s.mutants.find((m) => !sites.has(m));
  if (missing === undefined) return;
  const where = MUTANT_SCENARIOS[missing] ?? [];
  throw new UsageError(
    `mutant ${missing} is not reached by ${s.spec.scenario.name} with these parameters: no code this world runs checks it, so every run would be the correct code. ${where.length > 0 ? `Scenarios that reach it: ${where.join('; ')}` : 'Only a test world reaches it.'}`,
  );
}
