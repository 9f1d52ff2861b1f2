// Worlds for the interval-notifier explorer tests: the interval-mirror scenario's world with a
// given mutation.

import type { Kernel } from '../../src/index.ts';
import { buildIntervalMirror } from '../../src/scenarios/interval-mirror.ts';
import type { Mutation } from '../../src/scenarios/race-kit.ts';

export { mutations } from '../../src/scenarios/race-kit.ts';

/** The process, its mirror (inserted after setup, racing the mutation) and the mutator. */
export function intervalWorld(mutation: Mutation) {
  return (k: Kernel): void => buildIntervalMirror(k, mutation);
}
