/**
 * The verbs vocabulary (include/rdma/ib_verbs.h, include/uapi/rdma/ib_user_verbs.h and
 * rdma-core's verbs.h, whose values user space passes): access flags, ODP capability bits,
 * work-request opcodes, completion statuses, QP states and the wire timers' encodings.
 */

import { Errno } from '../../../lib/errors.ts';

// enum ib_access_flags / ibv_access_flags
export const IB_ACCESS_LOCAL_WRITE = 1 << 0;
export const IB_ACCESS_REMOTE_WRITE = 1 << 1;
export const IB_ACCESS_REMOTE_READ = 1 << 2;
export const IB_ACCESS_REMOTE_ATOMIC = 1 << 3;
export const IB_ACCESS_MW_BIND = 1 << 4;
export const IB_ACCESS_ZERO_BASED = 1 << 5;
export const IB_ACCESS_ON_DEMAND = 1 << 6;
export const IB_ACCESS_HUGETLB = 1 << 7;
/** Every access flag the model accepts at registration. */
export const IB_ACCESS_SUPPORTED =
  IB_ACCESS_LOCAL_WRITE |
  IB_ACCESS_REMOTE_WRITE |
  IB_ACCESS_REMOTE_READ |
  IB_ACCESS_REMOTE_ATOMIC |
  IB_ACCESS_ON_DEMAND;

/**
 * SIZE_MAX as the model writes it (lengths are safe integers): with address 0, the length of
 * an implicit ODP MR, which covers the whole address space.
 */
export const SIZE_MAX = Number.MAX_SAFE_INTEGER;

/** ib_access_writable(): the MR may be written (by the HCA, locally or remotely). */
export function ibAccessWritable(access: number): boolean {
  return (
    (access & (IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE | IB_ACCESS_REMOTE_ATOMIC)) !== 0
  );
}

// enum ib_uverbs_advise_mr_advice / ibv_advise_mr_advice
export const IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH = 0;
export const IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE = 1;
export const IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT = 2;
/** IB_UVERBS_ADVISE_MR_FLAG_FLUSH: synchronous; the translations are in the HCA on success. */
export const IB_UVERBS_ADVISE_MR_FLAG_FLUSH = 1 << 0;

/**
 * What a prefetch advice asks a driver for: PREFETCH never grants write (`readOnly`),
 * PREFETCH_NO_FAULT takes only pages the CPU already maps (`snapshot`). EOPNOTSUPP for an
 * advice that is no prefetch (what mlx5 and rxe answer).
 */
export function prefetchAdvice(advice: number): {
  readonly readOnly: boolean;
  readonly snapshot: boolean;
} {
  if (
    advice !== IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH &&
    advice !== IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE &&
    advice !== IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT
  )
    throw new Errno('EOPNOTSUPP', `advise_mr: advice ${advice} is not a prefetch`);
  return {
    readOnly: advice === IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH,
    snapshot: advice === IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
  };
}

// enum ib_odp_general_cap_bits / ibv_odp_general_caps
export const IB_ODP_SUPPORT = 1 << 0;
export const IB_ODP_SUPPORT_IMPLICIT = 1 << 1;
// enum ib_odp_transport_cap_bits / ibv_odp_transport_cap_bits
export const IB_ODP_SUPPORT_SEND = 1 << 0;
export const IB_ODP_SUPPORT_RECV = 1 << 1;
export const IB_ODP_SUPPORT_WRITE = 1 << 2;
export const IB_ODP_SUPPORT_READ = 1 << 3;
export const IB_ODP_SUPPORT_ATOMIC = 1 << 4;
export const IB_ODP_SUPPORT_SRQ_RECV = 1 << 5;
export const IB_ODP_SUPPORT_FLUSH = 1 << 6;
export const IB_ODP_SUPPORT_ATOMIC_WRITE = 1 << 7;

/** struct ib_odp_caps (ibv_query_device_ex's odp_caps). */
export interface IbOdpCaps {
  readonly generalCaps: number;
  readonly perTransportCaps: {
    readonly rc: number;
    readonly uc: number;
    readonly ud: number;
    readonly xrc: number;
  };
}

/** The work-request opcodes of an RC send queue (enum ib_wr_opcode). */
export type IbWrOpcode =
  | 'SEND'
  | 'RDMA_WRITE'
  | 'RDMA_READ'
  | 'ATOMIC_CMP_AND_SWP'
  | 'ATOMIC_FETCH_AND_ADD';

/** The ODP transport capability an opcode needs (mlx5_ib_odp_opcode_cap). */
export const ODP_OPCODE_CAP: Readonly<Record<IbWrOpcode, number>> = {
  SEND: IB_ODP_SUPPORT_SEND,
  RDMA_WRITE: IB_ODP_SUPPORT_WRITE,
  RDMA_READ: IB_ODP_SUPPORT_READ,
  ATOMIC_CMP_AND_SWP: IB_ODP_SUPPORT_ATOMIC,
  ATOMIC_FETCH_AND_ADD: IB_ODP_SUPPORT_ATOMIC,
};

/** The completion opcodes (enum ib_wc_opcode). */
export type IbWcOpcode = IbWrOpcode | 'RECV';

/** enum ib_wc_status, with its values. */
export const IB_WC_STATUS = {
  SUCCESS: 0,
  LOC_LEN_ERR: 1,
  LOC_QP_OP_ERR: 2,
  LOC_PROT_ERR: 4,
  WR_FLUSH_ERR: 5,
  REM_INV_REQ_ERR: 9,
  REM_ACCESS_ERR: 10,
  REM_OP_ERR: 11,
  RETRY_EXC_ERR: 12,
  RNR_RETRY_EXC_ERR: 13,
} as const;

/** A completion status name such as `'SUCCESS'`. */
export type IbWcStatus = keyof typeof IB_WC_STATUS;

/** enum ib_qp_state (SQD and SQE are not modelled). */
export type IbQpState = 'RESET' | 'INIT' | 'RTR' | 'RTS' | 'ERR';

/** The transitions modify_qp accepts (ib_modify_qp_is_ok() for RC, without SQD/SQE). */
export const QP_TRANSITIONS: Readonly<Record<IbQpState, readonly IbQpState[]>> = {
  RESET: ['RESET', 'INIT', 'ERR'],
  INIT: ['RESET', 'INIT', 'RTR', 'ERR'],
  RTR: ['RESET', 'RTS', 'ERR'],
  RTS: ['RESET', 'RTS', 'ERR'],
  ERR: ['RESET', 'ERR'],
};

/**
 * The RNR NAK timer a responder advertises, by its 5-bit encoding (IBA table 45), in ns:
 * 0 is the longest, 655.36 ms; 1 is 0.01 ms; 31 is 491.52 ms.
 */
export const RNR_TIMER_NS: readonly number[] = [
  655.36, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.12, 0.16, 0.24, 0.32, 0.48, 0.64, 0.96, 1.28, 1.92,
  2.56, 3.84, 5.12, 7.68, 10.24, 15.36, 20.48, 30.72, 40.96, 61.44, 81.92, 122.88, 163.84, 245.76,
  327.68, 491.52,
].map((ms) => Math.round(ms * 1_000_000));

/** rnr_retry 7 means retry for ever. */
export const RNR_RETRY_INFINITE = 7;

/** The local ACK timeout for an encoding 1–31: 4.096 µs · 2^timeout (0 means no timeout). */
export function ackTimeoutNs(timeout: number): number {
  return timeout === 0 ? Number.POSITIVE_INFINITY : 4096 * 2 ** timeout;
}
