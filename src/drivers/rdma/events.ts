import { kernel } from '../../kernel/kernel.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import '../../mm/events.ts';

/** Trace events of the RDMA drivers (merged into the kernel's TraceEventMap), for timelines and statistics. */
declare module '../../kernel/trace.ts' {
  interface TraceEventMap {
    /** The HCA stopped a side of a QP on a translation miss and posted a page-fault event. */
    'rdma-pagefault': { dev: string; qp: number; subtype: string; requester: boolean };
    /** PAGE_FAULT_RESUME of a QP side, with or without an error. */
    'rdma-resume': { dev: string; qp: number; error: boolean };
    /** The requester got an RNR NAK or no response (`kind` 'rnr' or 'drop'), or a NAK. */
    'rdma-nak': { dev: string; qp: number; kind: string; psn: number };
    /** A send WQE completed. */
    'rdma-wc': { dev: string; qp: number; opcode: string; status: string };
    /**
     * An ODP umem of the 2014 design joined its context active, or deferred (registered while a
     * notifier ran: its faults retry until it is activated), or was activated.
     */
    'odp-umem': { umem: string; state: 'active' | 'deferred' | 'activated' };
    /** The 2014 or interim notifier delivered an invalidation to a umem's driver. */
    'odp-invalidate': { umem: string };
    /** The last running notifier of a 2014 context ended; `waiting` umems were then deferred. */
    'odp-notifiers-idle': { ctx: string; waiting: number };
  }
}

/**
 * The dev-fault event of an ODP fault by device table `dev` over [va, va + bcnt) of mm `mm`:
 * for write or not, in a region registered writable or not.
 */
export function odpFaultEvent(
  dev: string,
  mm: number,
  va: number,
  bcnt: number,
  write: boolean,
  regionWritable: boolean,
): void {
  const k = kernel();
  if (!k.trace.on) return;
  const start = va - (va % PAGE_SIZE);
  k.trace.emit('dev-fault', { dev, mm, start, end: va + bcnt, write, regionWritable });
}
