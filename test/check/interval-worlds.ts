// Worlds for the interval-notifier explorer tests: a process's memory mirrored by an
// interval mirror (inserted and removed while the world runs) and a thread that mutates it.

import { Completion, type Kernel } from '../../src/index.ts';
import { PAGE_SIZE } from '../../src/mm/constants.ts';
import { mmput } from '../../src/mm/exit.ts';
import { mmdrop, mmgetNotZero, mmgrab } from '../../src/mm/mm-refs.ts';
import { IntervalMirror } from './interval-mirror.ts';
import { type Mutation, mapPopulated, newWorld, PAGES, spawnMutator } from './world-kit.ts';

export { mutations } from './world-kit.ts';

/** The process, its mirror (inserted after setup, racing the mutation) and the mutator. */
export function intervalWorld(mutation: Mutation) {
  return (k: Kernel): void => {
    const w = newWorld(k);
    const { mm } = w;
    const mirror = new IntervalMirror(k, mm, 'mirror');
    const done = new Completion('done');
    let exitedEarly = false;
    k.spawn('process', function* () {
      yield* mapPopulated(w, 1);
      mmgrab(mm); // the device's reference, taken when it is opened
      w.ready.completeAll();
      yield* done.wait();
      yield* done.wait();
      if (!exitedEarly) yield* mmput(mm);
    });
    k.spawn('device', function* () {
      yield* w.ready.wait();
      // Inserting needs an mm_users reference, as the driver's caller holds one.
      if (mmgetNotZero(mm)) {
        yield* mirror.insert(w.base, PAGES * PAGE_SIZE);
        yield* mmput(mm);
        for (let i = 0; i < PAGES; i++) yield* mirror.touch(w.base + i * PAGE_SIZE, i === 1);
        yield* mirror.remove();
      }
      mmdrop(mm);
      done.complete();
    });
    spawnMutator(k, w, mutation, function* (exited) {
      if (exited) exitedEarly = true;
      done.complete();
    });
  };
}
