// The clients of a `swarm` world: each mirrors one process through its own notifier and uses
// the mirror on a thread of its own, opening, using, closing and reopening it as planned.
// Every byte a client reads is checked against the data model.

import type { Dmirror } from '../../drivers/dmirror/dmirror.ts';
import { Dmirror as DmirrorClass } from '../../drivers/dmirror/dmirror.ts';
import {
  HMM_DMIRROR_READ,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_WRITE,
} from '../../drivers/dmirror/uapi.ts';
import { svaDma } from '../../drivers/iommu/ats.ts';
import { iommuSvaBindDevice, iommuSvaUnbindDevice, type SvaBond } from '../../drivers/iommu/sva.ts';
import { KvmMirror } from '../../drivers/kvm/kvm-mirror.ts';
import { IntervalMirror } from '../../drivers/mirror/interval-mirror.ts';
import { NouveauSvmm } from '../../drivers/nouveau/svm.ts';
import { sleep } from '../../kernel/context.ts';
import type { Co } from '../../kernel/task.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import { mmput } from '../../mm/exit.ts';
import { mmgetNotZero } from '../../mm/mm-refs.ts';
import { pageOf } from '../page-values.ts';
import { ioClientReady, openIo } from './mmapio-client.ts';
import type { ClientKind, ClientOp, PlannedOp } from './plan.ts';
import { openRdma } from './rdma-client.ts';
import {
  isProcessGone,
  pageAddr,
  STEP_NS,
  type SwarmProc,
  type SwarmWorld,
  stepValue,
} from './world.ts';

/** A client's mirror of one process while it is open. */
interface Mirror {
  /** Reads page `page` of the region; the bytes, or null when the client could not. */
  read(page: number): Co<Uint8Array | null>;
  /** Writes `bytes` to page `page`; false when the client could not. */
  write(page: number, bytes: Uint8Array): Co<boolean>;
  /** Maps pages ahead of use (RDMA prefetch, dmirror SNAPSHOT); absent: a read unchecked. */
  prefetch?(page: number, count: number): Co;
  close(): Co;
}

/** Opens a client of kind `kind` on `proc` (the caller holds an mm_users reference). */
type Opener = (w: SwarmWorld, proc: SwarmProc, name: string) => Co<Mirror | null>;

function* dmirrorCmd(d: Dmirror, request: number, addr: number, buf: Uint8Array): Co<number> {
  return yield* d.ioctl(request, { addr, ptr: buf, npages: 1, cpages: 0, faults: 0 });
}

const openers: Record<ClientKind, Opener> = {
  *dmirror(w, proc) {
    const d = yield* DmirrorClass.open(w.dmirror, proc.mm);
    return {
      *read(page) {
        const buf = new Uint8Array(PAGE_SIZE);
        return (yield* dmirrorCmd(d, HMM_DMIRROR_READ, pageAddr(proc, page), buf)) === 0
          ? buf
          : null;
      },
      *write(page, bytes) {
        return (yield* dmirrorCmd(d, HMM_DMIRROR_WRITE, pageAddr(proc, page), bytes)) === 0;
      },
      *prefetch(page, count) {
        const buf = new Uint8Array(count);
        const cmd = { addr: pageAddr(proc, page), ptr: buf, npages: count, cpages: 0, faults: 0 };
        yield* d.ioctl(HMM_DMIRROR_SNAPSHOT, cmd);
      },
      close: () => d.close(),
    };
  },
  *sva(_w, proc, name) {
    const bond: SvaBond = yield* iommuSvaBindDevice(name, proc.mm, proc.altSubscribe);
    return {
      *read(page) {
        const buf = new Uint8Array(PAGE_SIZE);
        const ok = yield* svaDma(bond, pageAddr(proc, page), false, (data) =>
          data.read(0, buf, 0, PAGE_SIZE),
        );
        return ok ? buf : null;
      },
      *write(page, bytes) {
        return yield* svaDma(bond, pageAddr(proc, page), true, (data) =>
          data.write(0, bytes, 0, PAGE_SIZE),
        );
      },
      close: () => iommuSvaUnbindDevice(bond),
    };
  },
  *kvm(w, proc) {
    const vm = new KvmMirror(w.k, proc.mm);
    yield* vm.register();
    return {
      *read(page) {
        const buf = new Uint8Array(PAGE_SIZE);
        const ok = yield* vm.access(pageAddr(proc, page), false, (data) =>
          data.read(0, buf, 0, PAGE_SIZE),
        );
        return ok ? buf : null;
      },
      *write(page, bytes) {
        return yield* vm.access(pageAddr(proc, page), true, (data) =>
          data.write(0, bytes, 0, PAGE_SIZE),
        );
      },
      close: () => vm.unregister(),
    };
  },
  *nouveau(w, proc) {
    // GPU SVM moves no data in the model: its table is checked by the coherence oracle. The
    // ->release docs/findings/nouveau-exit-release.md proposes is there unless findings=1.
    const svmm = yield* NouveauSvmm.init(proc.mm, { withRelease: !w.plan.findings });
    return {
      *read(page) {
        yield* svmm.access(pageAddr(proc, page), false);
        return null;
      },
      *write(page) {
        return yield* svmm.access(pageAddr(proc, page), true);
      },
      close: () => svmm.fini(),
    };
  },
  *mmapio(w, proc) {
    const m = yield* openIo(w.io!, proc);
    if (m === null) return null;
    proc.ioMaps = m.maps;
    return {
      read: (page) => m.read(page),
      write: (page, bytes) => m.write(page, bytes),
      prefetch: () => m.prefetch(),
      *close() {
        proc.ioMaps = [];
        yield* m.close();
      },
    };
  },
  *rdma(w, proc) {
    return yield* openRdma(w.rdma!, proc, w.plan.implicit, w.values);
  },
  *interval(w, proc, name) {
    // The minimal mirror moves no data: its table is checked by the coherence oracle alone.
    const m = new IntervalMirror(w.k, proc.mm, name);
    yield* m.insert(proc.base, proc.pages * PAGE_SIZE, proc.altSubscribe);
    return {
      *read(page) {
        yield* m.touch(pageAddr(proc, page), false);
        return null;
      },
      *write(page) {
        return yield* m.touch(pageAddr(proc, page), true);
      },
      close: () => m.remove(),
    };
  },
};

/**
 * A client's thread: runs its planned steps (an omitted `open` leaves it closed, and its uses
 * are skipped), then closes the mirror if it is open.
 */
export function* clientLife(
  w: SwarmWorld,
  proc: SwarmProc,
  kind: ClientKind,
  ops: readonly PlannedOp[],
): Co {
  let mirror: Mirror | null = null;
  let opens = 0;
  const open = function* (): Co {
    // The opener is a thread of the process: not once it exited (task->mm is gone).
    if (proc.exited || !mmgetNotZero(proc.mm)) return;
    try {
      mirror = yield* openers[kind](w, proc, `p${proc.index}.${kind}#${++opens}`);
    } catch (e) {
      if (!isProcessGone(proc, e)) throw e;
    } finally {
      yield* mmput(proc.mm);
    }
  };
  // The unplug waits until every mmapio client tried its open (the plan's first step; left
  // out, there is none to wait for).
  const io = kind === 'mmapio' ? w.io : null;
  if (io !== null && ops[0]?.kind !== 'open') ioClientReady(io);
  for (const op of ops) {
    if (op.kind === 'open') {
      if (mirror === null) yield* open();
      if (io !== null) ioClientReady(io);
    } else if (mirror !== null) {
      yield* useFrom(w, proc, kind, mirror, op);
      if (op.kind === 'reopen') {
        yield* (mirror as Mirror).close();
        mirror = null;
        yield* open();
      }
    }
    yield* sleep(STEP_NS);
  }
  if (mirror !== null) yield* (mirror as Mirror).close();
}

/**
 * Clients whose uses run in a thread of the process (dmirror's ioctl, a vCPU, CPU touches of a
 * device mapping): they hold an
 * mm_users reference. The others are devices acting on their own (DMA).
 */
const IN_PROCESS: readonly ClientKind[] = ['dmirror', 'kvm', 'mmapio'];

/**
 * A use of the mirror. An ioctl comes from a thread of the process, so never once it exited:
 * dmirror_read() loops on a dead mm (dmirror_fault() returns 0 when mmget_not_zero() fails),
 * which only an fd outliving its opener (passed on, or inherited across fork) can reach.
 */
function* useFrom(w: SwarmWorld, proc: SwarmProc, who: ClientKind, m: Mirror, op: PlannedOp): Co {
  if (!IN_PROCESS.includes(who)) return yield* use(w, proc, who, m, op);
  if (!mmgetNotZero(proc.mm)) return;
  try {
    yield* use(w, proc, who, m, op);
  } finally {
    yield* mmput(proc.mm);
  }
}

/** A read (checked) or write of each page of the step through the mirror. */
function* use(w: SwarmWorld, proc: SwarmProc, who: ClientKind, m: Mirror, op: PlannedOp): Co {
  const kind = op.kind as ClientOp;
  if (kind === 'reopen') return;
  if (kind === 'prefetch' && m.prefetch !== undefined) return yield* m.prefetch(op.page, op.count);
  for (let i = 0; i < op.count; i++) {
    const page = op.page + i;
    if (kind !== 'write') {
      const bytes = yield* m.read(page);
      if (bytes !== null)
        w.values.check(`p${proc.index}'s ${who} read`, proc.first + page, bytes, 0);
    } else {
      const v = stepValue(op.id, i);
      w.values.allow(proc.first + page, v);
      yield* m.write(page, pageOf(v));
    }
  }
}
