// The world a CLI command runs: a scenario and its parameters, stored in replay tokens as JSON.
import type { WorldBuilder } from '../check/run-world.ts';
import { type CostOverrides, resolveCosts } from '../cost/model.ts';
import { Errno } from '../lib/errors.ts';
import { findScenario, resolveParams } from '../scenarios/index.ts';
import type { Scenario, ScenarioParams } from '../scenarios/scenario.ts';

/** A scenario with its resolved parameters, and the cost overrides its run used. */
export interface WorldSpec {
  readonly scenario: Scenario;
  readonly params: ScenarioParams;
  /** `--cost`/`--costs` of `odpsim run`: a replay must spend the same virtual time. */
  readonly costs?: CostOverrides;
}

/** Resolves a scenario name and `--set` overrides; EINVAL on an unknown name or a bad value. */
export function worldSpec(name: string, overrides: Readonly<Record<string, number>>): WorldSpec {
  const scenario = findScenario(name);
  return { scenario, params: resolveParams(scenario, overrides) };
}

/** The `world` field of a replay token: `{"scenario":name,"params":{...}}`, plus `costs` if any. */
export function encodeWorld(spec: WorldSpec): string {
  const costs = spec.costs !== undefined && Object.keys(spec.costs).length > 0 ? spec.costs : null;
  return JSON.stringify({
    scenario: spec.scenario.name,
    params: spec.params,
    ...(costs === null ? {} : { costs }),
  });
}

/** The world a token's `world` field names; EINVAL when it names none or a bad one. */
export function decodeWorld(world: string): WorldSpec {
  let v: unknown;
  try {
    v = JSON.parse(world);
  } catch {
    v = null;
  }
  const o = v as { scenario?: unknown; params?: unknown; costs?: unknown } | null;
  if (
    o === null ||
    typeof o !== 'object' ||
    typeof o.scenario !== 'string' ||
    typeof o.params !== 'object' ||
    o.params === null
  ) {
    throw new Errno(
      'EINVAL',
      'the replay token names no odpsim scenario (it was not made by the odpsim command)',
    );
  }
  const spec = worldSpec(o.scenario, o.params as Record<string, number>);
  if (o.costs === undefined) return spec;
  if (o.costs === null || typeof o.costs !== 'object')
    throw new Errno('EINVAL', 'the replay token has a malformed cost table');
  const costs = o.costs as CostOverrides;
  resolveCosts(costs);
  return { ...spec, costs };
}

/** Builds the world on each fresh kernel. */
export function worldBuilder(spec: WorldSpec): WorldBuilder {
  return (k) => spec.scenario.build(k, spec.params);
}
