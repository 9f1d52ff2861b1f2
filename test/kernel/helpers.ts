import { Kernel, type KernelOptions, type RunResult, TraceRecorder } from '../../src/index.ts';

/** Builds a world on a fresh kernel and runs it once; returns the result and the trace. */
export function runOnce(
  build: (k: Kernel) => void,
  options: KernelOptions = {},
): RunResult & { log: string; kernel: Kernel } {
  const k = new Kernel(options);
  const rec = new TraceRecorder(k.trace);
  build(k);
  const r = k.run();
  return { ...r, log: rec.toText(), kernel: k };
}
