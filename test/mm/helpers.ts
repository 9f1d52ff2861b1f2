import { Kernel, type KernelOptions, type RunResult, TraceRecorder } from '../../src/index.ts';
import type { Co } from '../../src/kernel/task.ts';
import { Machine, type MachineOptions } from '../../src/mm/machine.ts';

/** Runs `body` as one task on a fresh kernel and machine; returns the run and its trace. */
export function runMm(
  body: (machine: Machine, k: Kernel) => Co<void>,
  options: {
    machine?: MachineOptions;
    kernel?: KernelOptions;
    setup?: (machine: Machine, k: Kernel) => void;
  } = {},
): RunResult & { machine: Machine; rec: TraceRecorder } {
  const k = new Kernel(options.kernel);
  const rec = new TraceRecorder(k.trace);
  const machine = new Machine(k, options.machine);
  options.setup?.(machine, k);
  k.spawn('main', () => body(machine, k));
  const r = k.run();
  return { ...r, machine, rec };
}

/** The trace events of one type, as plain objects. */
export function eventsOf<T extends string>(rec: TraceRecorder, type: T): Record<string, unknown>[] {
  return rec.events.filter((e) => e.type === type) as unknown as Record<string, unknown>[];
}
