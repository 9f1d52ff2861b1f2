import assert from 'node:assert/strict';
import { Kernel, type KernelOptions, type RunResult, TraceRecorder } from '../../src/index.ts';
import { current } from '../../src/kernel/kernel.ts';
import type { Co } from '../../src/kernel/task.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { Machine, type MachineOptions } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';
import { mmuNotifierRegister } from '../../src/mm/mmu-notifier-register.ts';
import { MmuNotifier, type MmuNotifierRange } from '../../src/mm/mmu-notifier-types.ts';

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

export const P = PAGE_SIZE;
export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** One invalidate_range_start as a classic notifier saw it, with the locks held at that moment. */
export interface Seen {
  event: string;
  start: number;
  end: number;
  mmapHeld: boolean;
  mmapWrite: boolean;
  atomic: number;
}

/**
 * Registers a classic notifier on `mm` that records each start in `seen`, with mmap_lock's state
 * and the atomic depth; `extra` adds fields of its own (another lock's state, say).
 */
export function* probe<X extends object = Record<never, never>>(
  mm: Mm,
  seen: (Seen & X)[],
  extra?: (range: MmuNotifierRange) => X,
): Co {
  const sub = new MmuNotifier({
    *invalidateRangeStart(_s, range) {
      seen.push({
        event: range.event,
        start: range.start,
        end: range.end,
        mmapHeld: mm.mmapLock.isLockedByCurrent(),
        mmapWrite: mm.mmapLock.isWriteLockedByCurrent(),
        atomic: current().atomicDepth,
        ...(extra?.(range) as X),
      });
      return 0;
    },
  });
  yield* mmuNotifierRegister(sub, mm);
}

/** VMAs and page table (entry kinds, frames, rights, dirty bits), for "nothing changed" checks. */
export function snapshot(mm: Mm): string {
  return JSON.stringify({
    vmas: mm.vmas.map((v) => [v.start, v.end, v.flags, v.pgoff]),
    pt: [...mm.pt].map(([vpn, p]) => [vpn, p.kind, p.page?.pfn, p.readable, p.writable, p.dirty]),
  });
}

/** Every mmu-start has exactly one mmu-end with the same id, range and event. */
export function assertPaired(rec: TraceRecorder): void {
  const ends = eventsOf(rec, 'mmu-end');
  for (const s of eventsOf(rec, 'mmu-start')) {
    const m = ends.filter((e) => e.id === s.id);
    assert.equal(m.length, 1, `start ${String(s.id)} has one end`);
    assert.deepEqual([m[0]!.start, m[0]!.end, m[0]!.event], [s.start, s.end, s.event]);
  }
}
