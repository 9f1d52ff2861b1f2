// Run statistics from the trace, and every oracle's verdict from the oracle registry.

import { registeredOracles } from '../check/oracles/registry.ts';
import type { KernelBug } from '../kernel/bug.ts';
import type { Kernel } from '../kernel/kernel.ts';
import type { TraceEvent } from '../kernel/trace.ts';
import '../drivers/rdma/events.ts';
import '../mm/events.ts';

/** Statistics of one run, collected from its trace. */
export interface RunStats {
  /** Scheduler steps (generator resumptions). */
  readonly steps: number;
  readonly contextSwitches: number;
  /** Switches away from a task that could have gone on. */
  readonly preemptions: number;
  /** Virtual time at the end of the run, ns (`kernel.now`). */
  readonly virtualTimeNs: number;
  /** CPU page faults ('cpu-fault'). */
  readonly cpuFaults: number;
  /** Device fault passes ('dev-fault'). */
  readonly devFaults: number;
  /** Device fault retries ('dev-retry'), and by reason. */
  readonly devRetries: number;
  readonly devRetriesByReason: Readonly<Record<string, number>>;
  /** Device accesses: through a mirrored translation ('dev-access'), or DMA to a frame ('dev-dma'). */
  readonly devAccesses: number;
  /** Translation caches: CPU TLB and IOTLB fills, CPU TLB flushes, IOTLB invalidations. */
  readonly tlb: {
    readonly cpuFills: number;
    readonly iotlbFills: number;
    readonly cpuFlushes: number;
    readonly iotlbFlushes: number;
  };
  /** invalidate_range_start calls ('mmu-start'), and by mmu_notifier_event. */
  readonly invalidations: number;
  readonly invalidationsByEvent: Readonly<Record<string, number>>;
  /** Interval-notifier ->invalidate callbacks ('itree-invalidate'). */
  readonly intervalInvalidations: number;
  /** Device translations: distinct pages ever mapped, mapped at the end, and the peak. */
  readonly mirrored: {
    readonly distinctPages: number;
    readonly final: number;
    readonly peak: number;
  };
  /** Frames in use ('page-alloc' minus 'page-free'): the peak and at the end. */
  readonly frames: { readonly peak: number; readonly final: number };
  /** RDMA traffic, or null in a world without an HCA. */
  readonly rdma: RdmaStats | null;
}

/** What the HCAs of a run did. */
export interface RdmaStats {
  /** Page-fault events the HCAs raised ('rdma-pagefault'), and how many stopped a requester. */
  readonly pageFaultEvents: number;
  readonly requesterFaults: number;
  /** PAGE_FAULT_RESUMEs, and those with an error. */
  readonly resumes: number;
  readonly resumeErrors: number;
  /** RNR NAKs, requests dropped (retried after the ACK timeout), and error NAKs. */
  readonly rnrNaks: number;
  readonly drops: number;
  readonly naks: number;
  /** Send completions by status. */
  readonly completions: Readonly<Record<string, number>>;
}

/** Counts a run's events as they happen. Attach it to a fresh kernel before the world is built. */
export class StatsCollector {
  private readonly kernel: Kernel;
  private cpuFaults = 0;
  private devFaults = 0;
  private devRetries = 0;
  private readonly retryReasons = new Map<string, number>();
  private devAccesses = 0;
  private readonly tlb = { cpuFills: 0, iotlbFills: 0, cpuFlushes: 0, iotlbFlushes: 0 };
  private invalidations = 0;
  private readonly invalidationEvents = new Map<string, number>();
  private intervalInvalidations = 0;
  private readonly everMapped = new Set<string>();
  private readonly mapped = new Set<string>();
  private peakMapped = 0;
  private frames = 0;
  private peakFrames = 0;
  private readonly rdma = {
    pageFaultEvents: 0,
    requesterFaults: 0,
    resumes: 0,
    resumeErrors: 0,
    rnrNaks: 0,
    drops: 0,
    naks: 0,
  };
  private readonly completions = new Map<string, number>();
  private rdmaSeen = false;

  constructor(k: Kernel) {
    this.kernel = k;
    k.trace.subscribe(this.onEvent);
  }

  private readonly onEvent = (e: TraceEvent): void => {
    switch (e.type) {
      case 'cpu-fault':
        this.cpuFaults++;
        return;
      case 'dev-fault':
        this.devFaults++;
        return;
      case 'dev-retry':
        this.devRetries++;
        bump(this.retryReasons, e.reason);
        return;
      case 'dev-access':
      case 'dev-dma':
        this.devAccesses++;
        return;
      case 'tlb-fill':
        if (e.kind === 'cpu') this.tlb.cpuFills++;
        else this.tlb.iotlbFills++;
        return;
      case 'tlb-flush':
        this.tlb.cpuFlushes++;
        return;
      case 'iotlb-flush':
        this.tlb.iotlbFlushes++;
        return;
      case 'mmu-start':
        this.invalidations++;
        bump(this.invalidationEvents, e.event);
        return;
      case 'itree-invalidate':
        this.intervalInvalidations++;
        return;
      case 'dev-map': {
        const key = `${e.dev}:${e.mm}:${e.addr}`;
        this.everMapped.add(key);
        this.mapped.add(key);
        if (this.mapped.size > this.peakMapped) this.peakMapped = this.mapped.size;
        return;
      }
      case 'dev-unmap':
        this.mapped.delete(`${e.dev}:${e.mm}:${e.addr}`);
        return;
      case 'page-alloc':
        this.frames++;
        if (this.frames > this.peakFrames) this.peakFrames = this.frames;
        return;
      case 'page-free':
        this.frames--;
        return;
      case 'rdma-pagefault':
        this.rdmaSeen = true;
        this.rdma.pageFaultEvents++;
        if (e.requester) this.rdma.requesterFaults++;
        return;
      case 'rdma-resume':
        this.rdma.resumes++;
        if (e.error) this.rdma.resumeErrors++;
        return;
      case 'rdma-nak':
        this.rdmaSeen = true;
        if (e.kind === 'rnr') this.rdma.rnrNaks++;
        else if (e.kind === 'drop') this.rdma.drops++;
        else this.rdma.naks++;
        return;
      case 'rdma-wc':
        this.rdmaSeen = true;
        bump(this.completions, e.status);
        return;
      default:
    }
  };

  /** The statistics so far (after the run: of the whole run). */
  snapshot(): RunStats {
    const k = this.kernel;
    return {
      steps: k.steps,
      contextSwitches: k.switches,
      preemptions: k.preemptions,
      virtualTimeNs: k.now,
      cpuFaults: this.cpuFaults,
      devFaults: this.devFaults,
      devRetries: this.devRetries,
      devRetriesByReason: sorted(this.retryReasons),
      devAccesses: this.devAccesses,
      tlb: { ...this.tlb },
      invalidations: this.invalidations,
      invalidationsByEvent: sorted(this.invalidationEvents),
      intervalInvalidations: this.intervalInvalidations,
      mirrored: {
        distinctPages: this.everMapped.size,
        final: this.mapped.size,
        peak: this.peakMapped,
      },
      frames: { peak: this.peakFrames, final: this.frames },
      rdma: this.rdmaSeen ? { ...this.rdma, completions: sorted(this.completions) } : null,
    };
  }
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

function sorted(m: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of [...m.keys()].sort()) out[key] = m.get(key)!;
  return out;
}

/** One oracle's verdict on a run. */
export interface OracleVerdict {
  /** `coherence`, `pairing`, `leaks`, a scenario's `data`, or `kernel` (the kernel's own rules). */
  readonly name: string;
  readonly description: string;
  readonly verdict: 'pass' | 'fail';
  /** Checks performed, or null where the check does not count them (`kernel`). */
  readonly checks: number | null;
  /** The bug message when it failed. */
  readonly message: string | null;
}

/**
 * The verdict of every oracle the world registered, plus `kernel` for the rules the kernel
 * checks itself (lockdep, sleeping in atomic context, deadlock, BUG_ON/WARN_ON): a run that
 * ended with a bug fails the oracle claiming the bug's rule, or `kernel` if none does.
 */
export function oracleVerdicts(k: Kernel, bug: KernelBug | null): OracleVerdict[] {
  const entries = registeredOracles(k);
  const owner = bug === null ? undefined : entries.find((o) => o.rules.includes(bug.rule));
  const out: OracleVerdict[] = entries.map((o) => ({
    name: o.name,
    description: o.description,
    verdict: o === owner ? 'fail' : 'pass',
    checks: o.checks(),
    message: o === owner ? bug!.message : null,
  }));
  const kernelFailed = bug !== null && owner === undefined;
  out.push({
    name: 'kernel',
    description: 'lockdep, sleeping in atomic context, deadlock, BUG_ON/WARN_ON, step limit',
    verdict: kernelFailed ? 'fail' : 'pass',
    checks: null,
    message: kernelFailed ? bug.message : null,
  });
  return out;
}
