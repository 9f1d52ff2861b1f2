import { Errno } from '../lib/errors.ts';
import { defaultScenario } from './default.ts';
import { dmirrorRaceScenario } from './dmirror-race.ts';
import { intervalMirrorScenario } from './interval-mirror.ts';
import { itreeNonblockLeakScenario } from './itree-nonblock-leak.ts';
import { kvmMirrorScenario } from './kvm-mirror.ts';
import { mmapIoUnplugScenario } from './mmap-io-unplug.ts';
import { nouveauExitScenario } from './nouveau-exit.ts';
import { rdmaOdpScenario } from './rdma-odp.ts';
import { rdmaPinnedVsOdpScenario } from './rdma-pinned-vs-odp.ts';
import type { Scenario, ScenarioParams } from './scenario.ts';
import { svaScenario } from './sva.ts';
import { swarmScenario } from './swarm/index.ts';
import { thpRaceScenario } from './thp-race.ts';

/** The scenario `odpsim run` runs when none is named. */
export const DEFAULT_SCENARIO = 'default';

/** Every built-in scenario, in the order `odpsim list` shows them; adding one is one line. */
export const SCENARIOS: readonly Scenario[] = [
  defaultScenario,
  kvmMirrorScenario,
  svaScenario,
  dmirrorRaceScenario,
  thpRaceScenario,
  rdmaOdpScenario,
  rdmaPinnedVsOdpScenario,
  mmapIoUnplugScenario,
  itreeNonblockLeakScenario,
  intervalMirrorScenario,
  nouveauExitScenario,
  swarmScenario,
];

/** The scenario named `name`; an unknown name is an EINVAL listing the known ones. */
export function findScenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (s === undefined) {
    throw new Errno(
      'EINVAL',
      `unknown scenario ${JSON.stringify(name)} (known: ${SCENARIOS.map((x) => x.name).join(', ')})`,
    );
  }
  return s;
}

/**
 * A scenario's parameters: its defaults with `overrides` applied, in declaration order. An
 * unknown name, a value that is not a safe integer, one outside the parameter's [min, max], or
 * a combination the scenario refuses is an EINVAL naming the parameter.
 */
export function resolveParams(
  scenario: Scenario,
  overrides: Readonly<Record<string, number>> = {},
): ScenarioParams {
  for (const name of Object.keys(overrides)) {
    if (!scenario.params.some((p) => p.name === name)) {
      const known = scenario.params.map((p) => p.name).join(', ') || 'none';
      throw new Errno(
        'EINVAL',
        `scenario ${scenario.name} has no parameter ${JSON.stringify(name)} (known: ${known})`,
      );
    }
  }
  const out: Record<string, number> = {};
  for (const p of scenario.params) {
    const v = Object.hasOwn(overrides, p.name) ? overrides[p.name] : p.default;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < p.min || v > p.max) {
      throw new Errno(
        'EINVAL',
        `parameter ${p.name} of scenario ${scenario.name} must be an integer in [${p.min}, ${p.max}], got ${String(v)}`,
      );
    }
    out[p.name] = v;
  }
  scenario.check?.(out);
  return out;
}

export type { Scenario, ScenarioFinding, ScenarioParam, ScenarioParams } from './scenario.ts';
