// A one-task world for the regression tests of the bad inputs the property found: a kernel with the oracles, a machine, one
// address space (released at the end), and the outcome of a call as a value.
import assert from 'node:assert/strict';
import {
  type Co,
  type Errno,
  installOracles,
  isErrno,
  Kernel,
  type KernelBug,
  Machine,
  type Mm,
  mmput,
} from '../../src/index.ts';

/** Runs `body` in a task of a fresh world; returns the run's bug (null when it passed). */
export function inWorld(body: (mm: Mm, machine: Machine) => Co<void>): KernelBug | null {
  const k = new Kernel({ maxSteps: 100_000 });
  const machine = new Machine(k, { frames: 64 });
  installOracles(k, machine);
  const mm = machine.createMm();
  k.spawn('process', function* () {
    yield* body(mm, machine);
    yield* mmput(mm);
  });
  return k.run().bug;
}

/** The Errno `call` throws; fails when it returns or throws anything else. */
export function* errnoOf(call: () => Co<unknown>): Co<Errno> {
  let r: unknown;
  try {
    r = yield* call();
  } catch (e) {
    if (isErrno(e)) return e;
    return assert.fail(
      `expected an Errno, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
    );
  }
  return assert.fail(`expected an Errno, got a return: ${String(r)}`);
}
