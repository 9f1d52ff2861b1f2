import { IntervalMirror } from '../drivers/mirror/interval-mirror.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Completion } from '../kernel/sync/completion.ts';
import { Errno } from '../lib/errors.ts';
import { PAGE_SIZE } from '../mm/constants.ts';
import { mmput } from '../mm/exit.ts';
import { mmdrop, mmgetNotZero, mmgrab } from '../mm/mm-refs.ts';
import {
  type Mutation,
  mapPopulated,
  mutations,
  newWorld,
  PAGES,
  spawnMutator,
} from './race-kit.ts';
import type { Scenario, ScenarioParams } from './scenario.ts';

/** The operations `op` selects, by number. */
export const MIRROR_OPS = Object.keys(mutations);

/**
 * The world of `interval-mirror`: a process maps and fills PAGES pages; a device inserts an
 * interval mirror over them (racing the mutation), touches each page (the second for write)
 * and removes the mirror; a mutator thread runs `mutation` once the memory is ready.
 */
export function buildIntervalMirror(k: Kernel, mutation: Mutation): void {
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
}

/**
 * `interval-mirror`: the smallest correct interval-notifier client (src/drivers/mirror/)
 * inserted, used and removed while one mm operation races it. The world of the interval
 * notifier's own mutants (N1 to N6).
 */
export const intervalMirrorScenario: Scenario = {
  name: 'interval-mirror',
  description:
    'a minimal interval-notifier mirror inserted, used and removed while one mm operation races it',
  params: [
    {
      name: 'op',
      description: `the racing operation: ${MIRROR_OPS.map((n, i) => `${i} ${n}`).join(', ')}`,
      default: 0,
      min: 0,
      max: MIRROR_OPS.length - 1,
    },
  ],
  build(k: Kernel, p: ScenarioParams): void {
    const name = MIRROR_OPS[p.op ?? 0];
    const mutation = name === undefined ? undefined : mutations[name];
    if (mutation === undefined) throw new Errno('EINVAL', `interval-mirror: no operation ${p.op}`);
    buildIntervalMirror(k, mutation);
  },
};
