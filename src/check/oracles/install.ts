import type { Kernel } from '../../kernel/kernel.ts';
import type { Machine } from '../../mm/machine.ts';
import { CoherenceOracle } from './coherence.ts';
import { IoMappingsOracle } from './io-mappings.ts';
import { ItreeLivenessOracle } from './itree-liveness.ts';
import { checkLeaks } from './leaks.ts';
import { LifetimeOracle } from './lifetime.ts';
import { LivenessOracle } from './liveness.ts';
import { PairingOracle } from './pairing.ts';
import { registerOracle } from './registry.ts';
import { TlbOracle } from './tlb.ts';
import { TranslationOracle } from './translation.ts';

/** The oracles watching one world, with their check counts for reports. */
export interface Oracles {
  readonly coherence: CoherenceOracle;
  readonly pairing: PairingOracle;
  readonly translation: TranslationOracle;
  readonly lifetime: LifetimeOracle;
  readonly liveness: LivenessOracle;
  readonly ioMappings: IoMappingsOracle;
  readonly tlb: TlbOracle;
}

/**
 * Installs every oracle on a world: subscribes them to the kernel's trace (coherence, pairing,
 * translation rules, lifetimes, liveness, IO mappings) and registers the quiescence checks:
 * every start ended, and, unless `leaks` is false, the leak check. Once every task finished,
 * the leak check fails a world that holds an mm_users reference no live process accounts for
 * (an mmput() was forgotten), then one that kept frames, slots, pins or subscriptions after
 * its address spaces were gone. Call it while building a world, before any task runs. Each
 * oracle is also registered for run reports (see registeredOracles()).
 */
export function installOracles(
  k: Kernel,
  machine: Machine,
  options: { leaks?: boolean } = {},
): Oracles {
  const coherence = new CoherenceOracle();
  const pairing = new PairingOracle();
  const translation = new TranslationOracle();
  const lifetime = new LifetimeOracle();
  const liveness = new LivenessOracle();
  const ioMappings = new IoMappingsOracle(machine);
  const tlb = new TlbOracle();
  const itreeLiveness = new ItreeLivenessOracle(machine, (mm) => liveness.inFlight(mm));
  k.trace.subscribe((e) => {
    coherence.onEvent(e);
    itreeLiveness.onEvent(e);
    pairing.onEvent(e);
    translation.onEvent(e);
    lifetime.onEvent(e);
    liveness.onEvent(e);
    ioMappings.onEvent(e);
    tlb.onEvent(e);
  });
  k.onQuiescence(() => pairing.checkQuiescent());
  k.onQuiescence(() => itreeLiveness.checkQuiescent());
  k.onStuck((blocked) => itreeLiveness.checkStuck(blocked));
  // References held by a process's objects are dropped when it is gone: only then must none be left.
  k.onQuiescence(() => {
    if (machine.mms.every((mm) => mm.users <= 0)) lifetime.checkQuiescent();
  });
  registerOracle(k, {
    name: 'coherence',
    description: 'no device translation outlives its CPU entry; no access to a freed frame',
    rules: ['coherence', 'use-after-free'],
    checks: () => coherence.checks,
  });
  registerOracle(k, {
    name: 'pairing',
    description: 'every invalidate_range_start is ended once, with the same range',
    rules: ['notifier-pairing'],
    checks: () => pairing.checks,
  });
  registerOracle(k, {
    name: 'translation',
    description:
      'a writable device translation only in a writable region; one update in flight per table; nothing after its destruction',
    rules: ['permission', 'serialization'],
    checks: () => translation.checks,
  });
  registerOracle(k, {
    name: 'lifetime',
    description:
      'driver objects are freed once, with no reference outstanding, and never used after',
    rules: ['lifetime'],
    checks: () => lifetime.checks,
  });
  registerOracle(k, {
    name: 'liveness',
    description:
      'a device fault gives up only when an invalidation of its address space ran meanwhile; every interval invalidation that begins ends',
    rules: ['liveness'],
    checks: () => liveness.checks + itreeLiveness.checks,
  });
  registerOracle(k, {
    name: 'io-mappings',
    description:
      'no page-table entry maps revoked device memory; none reaches an unplugged device; tracked VMAs are untracked before they go',
    rules: ['revocation', 'machine-check', 'tracking'],
    checks: () => ioMappings.checks,
  });
  registerOracle(k, {
    name: 'tlb',
    description:
      'no frame is freed while a CPU TLB or IOTLB can reach it; munmap, mprotect, mremap and madvise return only once no cached translation grants more than its page-table entry or what the call left',
    rules: ['stale-tlb', 'tlb-revocation'],
    checks: () => tlb.checks,
  });
  if (options.leaks ?? true) {
    let leakChecks = 0;
    k.onQuiescence(() => {
      leakChecks++;
      checkLeaks(machine);
    });
    registerOracle(k, {
      name: 'leaks',
      description:
        'once every task finished, every mm was mmput() and every frame, slot, pin and subscription is back',
      rules: ['leak'],
      checks: () => leakChecks,
    });
  }
  return { coherence, pairing, translation, lifetime, liveness, ioMappings, tlb };
}
