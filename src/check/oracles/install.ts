import type { Kernel } from '../../kernel/kernel.ts';
import type { Machine } from '../../mm/machine.ts';
import { CoherenceOracle } from './coherence.ts';
import { checkLeaks } from './leaks.ts';
import { PairingOracle } from './pairing.ts';

/** The oracles watching one world, with their check counts for reports. */
export interface Oracles {
  readonly coherence: CoherenceOracle;
  readonly pairing: PairingOracle;
}

/**
 * Subscribes the coherence and pairing oracles to the kernel's trace and registers the
 * quiescence checks (every start ended; no leak once every process exited). Call it while
 * building a world, before any task runs.
 */
export function installOracles(
  k: Kernel,
  machine: Machine,
  options: { leaks?: boolean } = {},
): Oracles {
  const coherence = new CoherenceOracle();
  const pairing = new PairingOracle();
  k.trace.subscribe((e) => {
    coherence.onEvent(e);
    pairing.onEvent(e);
  });
  k.onQuiescence(() => pairing.checkQuiescent());
  if (options.leaks ?? true) k.onQuiescence(() => checkLeaks(machine));
  return { coherence, pairing };
}
