// Which world a command explores, in a form a worker thread can load again: a built-in scenario
// with its parameters, or a user's module whose default export is a WorldBuilder.
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WorldBuilder } from '../check/run-world.ts';
import { UsageError } from './options.ts';
import { worldBuilder, worldSpec } from './world.ts';

/** A world by reference (structured-clonable, for worker threads). */
export type WorldRef =
  | {
      readonly kind: 'scenario';
      readonly scenario: string;
      readonly params: Readonly<Record<string, number>>;
    }
  | { readonly kind: 'module'; readonly path: string };

/** The builder a reference names; a module without a WorldBuilder export is a usage error. */
export async function loadWorld(ref: WorldRef): Promise<WorldBuilder> {
  if (ref.kind === 'scenario') return worldBuilder(worldSpec(ref.scenario, ref.params));
  const path = isAbsolute(ref.path) ? ref.path : resolve(ref.path);
  let mod: { default?: unknown; world?: unknown };
  try {
    if (/\.[cm]?ts$/.test(path) && !import.meta.url.endsWith('.ts')) await registerTsx();
    mod = (await import(pathToFileURL(path).href)) as typeof mod;
  } catch (e) {
    throw new UsageError(
      `--world ${ref.path}: cannot load it (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`,
    );
  }
  const build = typeof mod.default === 'function' ? mod.default : mod.world;
  if (typeof build !== 'function')
    throw new UsageError(
      `--world ${ref.path}: the module exports no world (export default a function (kernel) => void, or export const world)`,
    );
  return build as WorldBuilder;
}

let tsxRegistered = false;

/** Lets plain node import a TypeScript world, through tsx (a development dependency). */
async function registerTsx(): Promise<void> {
  if (tsxRegistered) return;
  try {
    const api = (await import('tsx/esm/api')) as { register: () => unknown };
    api.register();
    tsxRegistered = true;
  } catch {
    throw new Error('a TypeScript world needs tsx (npm install tsx), or compile it to .js');
  }
}
