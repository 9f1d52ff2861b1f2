// The world a CLI command runs: a scenario and its parameters, stored in replay tokens as JSON.
import type { ReducibleWorld, WorldBuilder } from '../check/run-world.ts';
import { type CostOverrides, resolveCosts } from '../cost/model.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Errno } from '../lib/errors.ts';
import { findScenario, resolveParams } from '../scenarios/index.ts';
import type { Scenario, ScenarioParams } from '../scenarios/scenario.ts';

/** A scenario with its resolved parameters, and the cost overrides its run used. */
export interface WorldSpec {
  readonly scenario: Scenario;
  readonly params: ScenarioParams;
  /** `--cost`/`--costs` of `odpsim run`: a replay must spend the same virtual time. */
  readonly costs?: CostOverrides;
  /** A generated scenario's operations left out by minimisation (ids, ascending). */
  readonly omit?: readonly number[];
}

/** Resolves a scenario name and `--set` overrides; EINVAL on an unknown name or a bad value. */
export function worldSpec(name: string, overrides: Readonly<Record<string, number>>): WorldSpec {
  const scenario = findScenario(name);
  return { scenario, params: resolveParams(scenario, overrides) };
}

/** The `world` field of a replay token: `{"scenario":name,"params":{...}}`, plus `costs` if any. */
export function encodeWorld(spec: WorldSpec): string {
  const costs = spec.costs !== undefined && Object.keys(spec.costs).length > 0 ? spec.costs : null;
  const omit = spec.omit !== undefined && spec.omit.length > 0 ? spec.omit : null;
  return JSON.stringify({
    scenario: spec.scenario.name,
    params: spec.params,
    ...(costs === null ? {} : { costs }),
    ...(omit === null ? {} : { omit }),
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
  const o = v as { scenario?: unknown; params?: unknown; costs?: unknown; omit?: unknown } | null;
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
  const spec = withOmit(worldSpec(o.scenario, o.params as Record<string, number>), o.omit);
  if (o.costs === undefined) return spec;
  if (o.costs === null || typeof o.costs !== 'object')
    throw new Errno('EINVAL', 'the replay token has a malformed cost table');
  const costs = o.costs as CostOverrides;
  resolveCosts(costs);
  return { ...spec, costs };
}

/** A token's `omit`: ids of a generated scenario's operations, else EINVAL. */
function withOmit(spec: WorldSpec, omit: unknown): WorldSpec {
  if (omit === undefined) return spec;
  if (spec.scenario.operations === undefined)
    throw new Errno(
      'EINVAL',
      `the replay token leaves operations out of scenario ${spec.scenario.name}, which is not generated`,
    );
  if (!Array.isArray(omit) || !omit.every((x) => Number.isSafeInteger(x) && x >= 0))
    throw new Errno('EINVAL', 'the replay token has a malformed list of omitted operations');
  return { ...spec, omit: omit as number[] };
}

/**
 * Builds the world on each fresh kernel. A generated scenario's builder can also leave out
 * operations (ReducibleWorld), for minimisation.
 */
export function worldBuilder(spec: WorldSpec): WorldBuilder {
  const omit = new Set(spec.omit ?? []);
  const build = (k: Kernel) => spec.scenario.build(k, spec.params, omit);
  const operations = spec.scenario.operations;
  if (operations === undefined) return build;
  const reducible: ReducibleWorld = {
    operations: (seed) => operations(spec.params, seed),
    omitted: spec.omit ?? [],
    without(ids) {
      const next: WorldSpec = { ...spec, omit: [...ids].sort((a, b) => a - b) };
      return { build: worldBuilder(next), world: encodeWorld(next) };
    },
  };
  return Object.assign(build, { reducible });
}

/**
 * The lines describing the world a replay token names, for a generated scenario (its drawn
 * shape, less what minimisation left out); none for a fixed one.
 */
export function describeTokenWorld(spec: WorldSpec, seed: number): string[] {
  const describe = spec.scenario.describe;
  if (describe === undefined) return [];
  return describe(spec.params, seed, new Set(spec.omit ?? []));
}
