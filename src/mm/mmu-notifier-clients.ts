/**
 * The kinds of notifier client the model has, by driver (not instance), and the callbacks each
 * one's ops define: what the notifier core can reach. Each driver names its kind in its ops
 * (`client`); the core reports every callback it calls with an `mn-callback` event
 * ({@link traceCallback}), so a coverage report can say which were reached and which not.
 */
import type { Mm } from './mm.ts';
import type { MmuNotifyEvent } from './mmu-notifier-types.ts';
import './events.ts';

/** A client kind: one per driver with notifier ops. */
export type MnClient =
  | 'dmirror'
  | 'kvm'
  | 'interval-mirror'
  | 'sva'
  | 'nouveau'
  | 'rdma-odp-2014'
  | 'rdma-odp-2018'
  | 'mlx5'
  | 'rxe';

/** A callback the core calls, by its name in struct mmu_notifier_ops / mmu_interval_notifier_ops. */
export type MnCallback =
  | 'invalidate_range_start'
  | 'invalidate_range_end'
  | 'invalidate'
  | 'release'
  | 'arch_invalidate_secondary_tlbs'
  | 'clear_flush_young'
  | 'clear_young'
  | 'test_young';

/** What the model has of one client kind. */
export interface MnClientInfo {
  /** The kernel code it models. */
  readonly driver: string;
  /** The callbacks its ops define (some only under a mutant or an option, noted in `driver`). */
  readonly callbacks: readonly MnCallback[];
}

const START_END = ['invalidate_range_start', 'invalidate_range_end'] as const;

/** Every client kind and its callbacks. */
export const MN_CLIENTS: Readonly<Record<MnClient, MnClientInfo>> = {
  dmirror: {
    driver: 'lib/test_hmm.c: dmirror_min_ops, and dmirror_mrn_ops of a snapshot',
    callbacks: ['invalidate'],
  },
  kvm: {
    driver: 'virt/kvm/kvm_main.c: kvm_mmu_notifier_ops',
    callbacks: [...START_END, 'release'],
  },
  'interval-mirror': {
    driver: 'a generic interval-notifier mirror (its classic ops under mirror.valid-flag)',
    callbacks: ['invalidate', ...START_END, 'release'],
  },
  sva: {
    driver:
      'drivers/iommu SVA: the secondary-TLB hook and ->release (range start under sva.flush-at-range-start)',
    callbacks: ['arch_invalidate_secondary_tlbs', 'release', 'invalidate_range_start'],
  },
  nouveau: {
    driver: 'nouveau_svm.c: nouveau_mn_ops, nouveau_svm_mni_ops (->release: the proposed fix)',
    callbacks: ['invalidate_range_start', 'invalidate', 'release'],
  },
  'rdma-odp-2014': {
    driver: 'umem_odp.c ib_umem_notifiers, 3.19 to 4.19',
    callbacks: [...START_END, 'release'],
  },
  'rdma-odp-2018': {
    driver: 'umem_odp.c ib_umem_notifiers, per_mm design of 4.20 to 5.4',
    callbacks: [...START_END, 'release'],
  },
  mlx5: { driver: 'mlx5/odp.c: mlx5_mn_ops (5.5 on)', callbacks: ['invalidate'] },
  rxe: { driver: 'sw/rxe/rxe_odp.c: rxe_mn_ops', callbacks: ['invalidate'] },
};

/**
 * The events the model's mm raises, by the callbacks that see them: a classic subscriber's
 * range callbacks and an interval subscription's invalidate (which also gets mn_itree_release()'s
 * RELEASE at exit). SOFT_DIRTY exists in the enum but no modelled path raises it.
 */
export const RAISED_EVENTS: {
  readonly classic: readonly MmuNotifyEvent[];
  readonly interval: readonly MmuNotifyEvent[];
} = {
  classic: ['UNMAP', 'CLEAR', 'PROTECTION_VMA', 'PROTECTION_PAGE', 'MIGRATE', 'EXCLUSIVE'],
  interval: [
    'UNMAP',
    'CLEAR',
    'PROTECTION_VMA',
    'PROTECTION_PAGE',
    'MIGRATE',
    'EXCLUSIVE',
    'RELEASE',
  ],
};

/** Events only device memory raises, which swarm's worlds do not have yet. */
const DEVICE_MEMORY_EVENTS: Readonly<Record<string, string>> = {
  MIGRATE:
    'when a device migrates memory (dmirror MIGRATE_TO_DEV/TO_SYS: the default scenario, dmirror-race --set migrate=1); swarm does not draw device memory yet',
  EXCLUSIVE:
    'when a device takes exclusive access (dmirror EXCLUSIVE: the default scenario); swarm does not draw device memory yet',
};

/** The coverage item of a callback: `client callback` and, for a range callback, ` EVENT`. */
export function mnCallbackItem(client: string, callback: string, event: string | null): string {
  return event === null ? `${client} ${callback}` : `${client} ${callback} ${event}`;
}

/** Every (client, callback, event) the model can reach, as {@link mnCallbackItem}s. */
export const MN_CALLBACK_ITEMS: readonly string[] = Object.entries(MN_CLIENTS).flatMap(
  ([client, info]) =>
    info.callbacks.flatMap((cb) => {
      const events =
        cb === 'invalidate'
          ? RAISED_EVENTS.interval
          : cb === 'invalidate_range_start' || cb === 'invalidate_range_end'
            ? RAISED_EVENTS.classic
            : [null];
      return events.map((e) => mnCallbackItem(client, cb, e));
    }),
);

/**
 * Emits `mn-callback` for a callback of `client`'s ops the core is about to call on `mm`
 * (nothing when no one listens).
 */
export function traceCallback(
  mm: Mm,
  client: MnClient | undefined,
  callback: MnCallback,
  event: MmuNotifyEvent | null,
): void {
  const bus = mm.machine.kernel.trace;
  if (bus.on) bus.emit('mn-callback', { client: client ?? 'unnamed', callback, event, mm: mm.id });
}

const INTERIM = 'in the interim ODP design (rdma-odp --set design=2018), which swarm does not draw';

/**
 * Callback items correct code reaches only under a condition (a mutant, a scenario setting, a
 * design swarm does not draw) or never, keyed by item or by its client and callback, or its
 * client. Coverage reports list them apart from the items a run could have reached.
 */
export const MN_CONDITIONS: Readonly<Record<string, string>> = {
  'interval-mirror invalidate_range_start': 'under the mutant mirror.valid-flag',
  'interval-mirror invalidate_range_end': 'under the mutant mirror.valid-flag',
  'interval-mirror release': 'under the mutant mirror.valid-flag',
  'sva invalidate_range_start': 'under the mutant sva.flush-at-range-start',
  'nouveau release': 'with the proposed fix (nouveau-exit --set fix=1; swarm applies it)',
  'nouveau invalidate RELEASE':
    'never: nouveau subscribes an interval only for a GPU fault, which holds mm_users, so no exit meets one',
  'rdma-odp-2018': INTERIM,
};

/** When a callback item is reached beyond correct code in a scenario with its client; null: always. */
export function mnCondition(item: string): string | null {
  const [client = '', callback = '', event = ''] = item.split(' ');
  return (
    MN_CONDITIONS[item] ??
    MN_CONDITIONS[`${client} ${callback}`] ??
    MN_CONDITIONS[client] ??
    DEVICE_MEMORY_EVENTS[event] ??
    null
  );
}
