// Worlds for the mm explorer tests: a process whose memory a KVM-style mirror follows while
// another thread mutates it.

import type { Kernel } from '../../src/index.ts';
import { PAGE_SIZE } from '../../src/mm/constants.ts';
import { mmput } from '../../src/mm/exit.ts';
import {
  mutations as allMutations,
  type Mutation,
  mapPopulated,
  newWorld,
  PAGES,
  spawnMutator,
} from '../../src/scenarios/race-kit.ts';
import { KvmMirror } from './kvm-mirror.ts';

/** The mutations of the interval worlds but the OOM reaper. */
export const mutations: Record<string, Mutation> = Object.fromEntries(
  Object.entries(allMutations).filter(([name]) => name !== 'oomReaper'),
);

/** A process whose memory a KVM-style mirror follows while another thread mutates it. */
export function kvmWorld(mutation: Mutation, exits = true) {
  return (k: Kernel): void => {
    const w = newWorld(k);
    const { mm } = w;
    const kvm = new KvmMirror(k, mm);
    k.spawn('vcpu', function* () {
      yield* mapPopulated(w, 0);
      yield* kvm.register();
      w.ready.complete();
      for (let i = 0; i < 2 * PAGES; i++)
        yield* kvm.touch(w.base + (i % PAGES) * PAGE_SIZE, i % 2 === 1);
      yield* kvm.unregister();
      w.ready.complete();
    });
    spawnMutator(k, w, mutation, function* (exited) {
      yield* w.ready.wait();
      if (exits && !exited) yield* mmput(mm);
    });
  };
}
