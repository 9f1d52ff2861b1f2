// `odpsim list`: the scenarios with their parameters, and the mutants.
import { MUTANTS, reachCommand } from '../check/mutants.ts';
import { DEFAULT_SCENARIO, SCENARIOS } from '../scenarios/index.ts';
import type { Io } from './io.ts';
import type { ListJson } from './json.ts';
import { MUTANT_SCENARIOS } from './mutant-scenarios.ts';
import { EXIT } from './options.ts';

/** Lists scenarios and mutants; returns the exit status. */
export function listCommand(io: Io, opts: { readonly json: boolean }): number {
  const report: ListJson = {
    command: 'list',
    defaultScenario: DEFAULT_SCENARIO,
    scenarios: SCENARIOS.map((s) => ({
      name: s.name,
      description: s.description,
      params: s.params.map((p) => ({ ...p })),
      finding: s.finding ?? null,
    })),
    mutants: MUTANTS.map((m) => ({ ...m, scenarios: MUTANT_SCENARIOS[m.name] ?? [] })),
  };
  if (opts.json) {
    io.out(JSON.stringify(report, null, 2));
    return EXIT.ok;
  }
  const lines = ['Scenarios (odpsim run|explore <scenario> --set name=value)'];
  const setting = (p: { name: string; default: number }) => `${p.name}=${p.default}`;
  const setWidth = Math.max(
    0,
    ...report.scenarios.flatMap((s) => s.params.map((p) => setting(p).length)),
  );
  for (const s of report.scenarios) {
    lines.push(`  ${s.name}${s.name === DEFAULT_SCENARIO ? '  (what odpsim run runs)' : ''}`);
    lines.push(`    ${s.description}`);
    if (s.finding !== null) {
      const clean = Object.entries(s.finding.clean).map(([k, v]) => `--set ${k}=${v}`);
      lines.push(
        `    at its defaults it reproduces a kernel bug (${s.finding.rule}; ${s.finding.doc}); clean with ${clean.join(' ')}`,
      );
    }
    for (const p of s.params)
      lines.push(`    --set ${setting(p).padEnd(setWidth)}  ${p.description} [${p.min}..${p.max}]`);
  }
  lines.push('', 'Mutants (odpsim explore <scenario> --mutant name)');
  const width = Math.max(...report.mutants.map((m) => m.name.length));
  const pad = ' '.repeat(width + 4);
  for (const m of report.mutants) {
    lines.push(`  ${m.name.padEnd(width)}  ${m.description}`);
    const how =
      m.reach === undefined
        ? 'only a test world reaches it (see its description)'
        : `found by ${reachCommand(m.name, m.reach)}${m.reach.reports === undefined ? '' : ` (reported as ${m.reach.reports})`}`;
    lines.push(`${pad}breaks ${m.rule}; ${how}`);
    lines.push(
      `${pad}reached by ${m.scenarios.length > 0 ? m.scenarios.join('; ') : 'no built-in scenario'} (explore refuses it elsewhere)`,
    );
  }
  io.out(lines.join('\n'));
  return EXIT.ok;
}
