// Worlds for the SVA explorer tests: a process whose memory an SVA device reaches through its
// IOTLB (and the process's thread through its CPU TLB) while another thread mutates it.

import { svaDma } from '../../src/drivers/iommu/ats.ts';
import { iommuSvaBindDevice, iommuSvaUnbindDevice } from '../../src/drivers/iommu/sva.ts';
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

/** The mutations the issue names for SVA, plus madvise and mremap. */
export const svaMutations: Record<string, Mutation> = Object.fromEntries(
  ['munmap', 'mprotect', 'fork', 'reclaim', 'migration', 'madvise', 'mremap', 'exit'].map((n) => [
    n,
    allMutations[n]!,
  ]),
);

/**
 * The device thread populates the pages through the CPU, binds, makes 2·PAGES DMAs (reads and
 * writes alternately), unbinds; the mutator runs `mutation` meanwhile.
 */
export function svaWorld(mutation: Mutation) {
  return (k: Kernel): void => {
    const w = newWorld(k);
    const { mm } = w;
    k.spawn('device', function* () {
      yield* mapPopulated(w, 0);
      const bond = yield* iommuSvaBindDevice('sva0', mm);
      w.ready.complete();
      for (let i = 0; i < 2 * PAGES; i++)
        yield* svaDma(bond, w.base + (i % PAGES) * PAGE_SIZE, i % 2 === 1);
      yield* iommuSvaUnbindDevice(bond);
      w.ready.complete();
    });
    spawnMutator(k, w, mutation, function* (exited) {
      yield* w.ready.wait();
      if (!exited) yield* mmput(mm);
    });
  };
}
