import type { Kernel } from '../kernel/kernel.ts';

/** A device's counters as a run reports them (name → value, in the device's order). */
export interface DeviceCounters {
  readonly device: string;
  readonly counters: Readonly<Record<string, number>>;
}

const registries = new WeakMap<Kernel, { device: string; read: () => Record<string, number> }[]>();

/**
 * Registers the counters of a device (mlx5's ODP statistics, say) for the run report: `read`
 * is called when the report is made. Devices call it when they are created.
 */
export function registerCounters(
  k: Kernel,
  device: string,
  read: () => Record<string, number>,
): void {
  let list = registries.get(k);
  if (list === undefined) {
    list = [];
    registries.set(k, list);
  }
  list.push({ device, read });
}

/** The counters of every device registered on `k`, in creation order. */
export function countersOf(k: Kernel): DeviceCounters[] {
  return (registries.get(k) ?? []).map((r) => ({ device: r.device, counters: { ...r.read() } }));
}
