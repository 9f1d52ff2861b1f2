// The client of the rdma-odp scenario: its memory, MRs and connections, the operations it
// makes on the server's MRs (each checked), and the probe of the region the server unmaps.

import type { IbDevice } from '../drivers/rdma/core/device.ts';
import {
  IB_ACCESS_LOCAL_WRITE,
  IB_ACCESS_ON_DEMAND,
  IB_ODP_SUPPORT_IMPLICIT,
  type IbWcStatus,
  SIZE_MAX,
} from '../drivers/rdma/core/ib-verbs.ts';
import type { IbMr, IbSendWr, IbSge } from '../drivers/rdma/core/objects.ts';
import { ibUverbsClose } from '../drivers/rdma/core/uverbs.ts';
import { ibQueryDeviceEx, ibRegMr } from '../drivers/rdma/core/verbs.ts';
import { join, sleep } from '../kernel/context.ts';
import type { Co } from '../kernel/task.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/constants.ts';
import { cpuRead, cpuWrite } from '../mm/cpu-access.ts';
import { mmap } from '../mm/mmap.ts';
import { exitMm, type Process } from '../mm/process.ts';
import { pageOf } from './page-values.ts';
import { connectedPair, openEndpoint, postAndWait, type QpEnd } from './rdma-kit.ts';
import { type RdmaOdpWorld, RO_VALUE, THINK_NS, written } from './rdma-odp.ts';

/** Client pages: WRITE source, READ destination, atomic results, SEND part, the probe's, read-only page. */
const OUT = 0;
const IN = 1;
const ATOMIC = 2;
const SEND = 3;
const PROBE = 4;
const RO = 5;
const CLIENT_PAGES = 6;
/** Reads the probe makes before it waits for the munmap. */
const PROBE_READS = 4;
/** Operations on the second MR once it is registered (a write and a read of each of two pages). */
const MR2_OPS = 4;

/** The client's memory and MRs. */
interface Local {
  readonly proc: Process;
  readonly base: number;
  /** Every page but the read-only one, writable, on demand (implicit where the device can). */
  readonly mr: IbMr;
  /** The read-only page, on demand (no write right at all). */
  readonly ro: IbMr;
}

/** The client process's whole life. */
export function* clientLife(w: RdmaOdpWorld, proc: Process, dev: IbDevice): Co {
  const mm = proc.mm!;
  const base = yield* mmap(mm, {
    len: CLIENT_PAGES * PAGE_SIZE,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS,
  });
  yield* cpuWrite(mm, base + RO * PAGE_SIZE, pageOf(RO_VALUE));
  const ep = yield* openEndpoint(dev, proc);
  w.client = ep;
  const implicit = (ibQueryDeviceEx(dev).odpCaps.generalCaps & IB_ODP_SUPPORT_IMPLICIT) !== 0;
  const local: Local = {
    proc,
    base,
    // A device with implicit ODP gets one MR over the whole address space instead.
    mr: implicit
      ? yield* ibRegMr(proc, ep.pd, 0, SIZE_MAX, IB_ACCESS_LOCAL_WRITE | IB_ACCESS_ON_DEMAND)
      : yield* ibRegMr(
          proc,
          ep.pd,
          base,
          RO * PAGE_SIZE,
          IB_ACCESS_LOCAL_WRITE | IB_ACCESS_ON_DEMAND,
        ),
    ro: yield* ibRegMr(proc, ep.pd, base + RO * PAGE_SIZE, PAGE_SIZE, IB_ACCESS_ON_DEMAND),
  };
  yield* w.serverReady.wait();
  w.main = yield* connectedPair(ep, w.server!, { minRnrTimer: 1 });
  w.probe = yield* connectedPair(ep, w.server!, { minRnrTimer: 1 });
  w.ready.completeAll();
  const probe = w.k.spawn('probe', () => probeLife(w, local));
  for (let i = 0; i < w.ops; i++) {
    yield* sleep(THINK_NS / 2);
    yield* operation(w, local, i);
  }
  yield* join(probe);
  if (w.secondMr) {
    yield* w.mr2Ready.wait();
    for (let i = 0; i < MR2_OPS; i++) yield* onSecond(w, local, w.ops + i);
  }
  w.clientDone = true;
  w.main[1].cq.wq.wakeUpAll();
  yield* ibUverbsClose(ep.file);
  yield* exitMm(proc);
}

const sge = (l: Local, page: number, length = PAGE_SIZE): IbSge => ({
  addr: l.base + page * PAGE_SIZE,
  length,
  lkey: page === RO ? l.ro.lkey : l.mr.lkey,
});

/** One RDMA operation on the main connection, chosen by the world's PRNG, and its check. */
function* operation(w: RdmaOdpWorld, l: Local, i: number): Co {
  const { k, quarter: q } = w;
  const choice = k.prng.below(6);
  // Q0 (less the atomics page) and Q2 take writes; Q1 is read through the read-only MR.
  const rwPage = () => {
    const j = k.prng.below(2 * q - 1);
    return j < q - 1 ? j + 1 : q + j + 1;
  };
  if (choice === 0) return yield* writePage(w, l, i, w.base, rwPage(), 0, w.mr!);
  if (choice === 1) return yield* readPage(w, l, w.base, rwPage(), 0, w.mr!);
  if (choice === 2) return yield* readPage(w, l, w.base, q + k.prng.below(q), 0, w.roMr!);
  if (choice === 3 || choice === 4) return yield* atomic(w, l, i, choice === 3);
  const v = written(i);
  yield* cpuWrite(l.proc.mm!, l.base + SEND * PAGE_SIZE, pageOf(v));
  w.sent.push(v);
  yield* expect(
    w,
    w.main![0],
    { wrId: i, opcode: 'SEND', sgList: [sge(l, SEND), sge(l, RO)] },
    'SUCCESS',
  );
}

/** Operation `i` on the second MR: a write, then a read back, of its first pages in turn. */
function* onSecond(w: RdmaOdpWorld, l: Local, i: number): Co {
  const page = (i >> 1) % w.quarter;
  if (i % 2 === 0) yield* writePage(w, l, i, w.base2, page, w.pages, w.mr2!);
  else yield* readPage(w, l, w.base2, page, w.pages, w.mr2!);
}

/** RDMA WRITE of a page holding `written(i)`; `first` is where the buffer's pages start in `values`. */
function* writePage(
  w: RdmaOdpWorld,
  l: Local,
  i: number,
  base: number,
  page: number,
  first: number,
  mr: IbMr,
): Co {
  const v = written(i);
  w.values.allow(first + page, v);
  yield* cpuWrite(l.proc.mm!, l.base + OUT * PAGE_SIZE, pageOf(v));
  yield* expect(w, w.main![0], write(sge(l, OUT), base + page * PAGE_SIZE, mr.rkey), 'SUCCESS');
}

/** RDMA READ of a page, checked against the values its writers put there. */
function* readPage(
  w: RdmaOdpWorld,
  l: Local,
  base: number,
  page: number,
  first: number,
  mr: IbMr,
): Co {
  yield* expect(w, w.main![0], read(sge(l, IN), base + page * PAGE_SIZE, mr.rkey), 'SUCCESS');
  const got = yield* cpuRead(l.proc.mm!, l.base + IN * PAGE_SIZE, PAGE_SIZE);
  w.values.check('client READ', first + page, got, 0);
}

/** Fetch-and-add 1 at word 0, or compare-and-swap of word 1 from the count of earlier swaps. */
function* atomic(w: RdmaOdpWorld, l: Local, i: number, faa: boolean): Co {
  const wr: IbSendWr = {
    wrId: i,
    opcode: faa ? 'ATOMIC_FETCH_AND_ADD' : 'ATOMIC_CMP_AND_SWP',
    sgList: [sge(l, ATOMIC, 8)],
    remoteAddr: w.base + (faa ? 0 : 8),
    rkey: w.mr!.rkey,
    compareAdd: faa ? 1 : w.cas,
    swap: w.cas + 1,
  };
  yield* expect(w, w.main![0], wr, 'SUCCESS');
  const got = yield* cpuRead(l.proc.mm!, l.base + ATOMIC * PAGE_SIZE, 8);
  const old = new DataView(got.buffer).getBigUint64(0, true);
  const want = faa ? w.faa : w.cas;
  w.checks++;
  if (old !== BigInt(want))
    w.k.bug('rdma-completion', `${wr.opcode} ${i} returned ${old}, expected ${want}`);
  if (faa) w.faa++;
  else w.cas++;
}

const write = (local: IbSge, remoteAddr: number, rkey: number): IbSendWr => ({
  wrId: 0,
  opcode: 'RDMA_WRITE',
  sgList: [local],
  remoteAddr,
  rkey,
});

const read = (local: IbSge, remoteAddr: number, rkey: number): IbSendWr => ({
  wrId: 0,
  opcode: 'RDMA_READ',
  sgList: [local],
  remoteAddr,
  rkey,
});

/** Posts `wr`, waits, and checks the completion status is one of `allowed`. */
function* expect(
  w: RdmaOdpWorld,
  end: QpEnd,
  wr: IbSendWr,
  ...allowed: IbWcStatus[]
): Co<IbWcStatus> {
  const wc = yield* postAndWait(end, wr);
  w.checks++;
  if (!allowed.includes(wc.status))
    w.k.bug(
      'rdma-completion',
      `${wr.opcode} to ${wr.remoteAddr ?? 'the server'} completed with ${wc.status}, expected ${allowed.join(' or ')}`,
    );
  return wc.status;
}

/**
 * The probe reads Q3 through its own connection while the server may be unmapping it: a read
 * either succeeds (with the page's value) or, once the munmap started, fails with a remote
 * access error. After munmap has returned, a read there must fail (never return a stale page).
 */
function* probeLife(w: RdmaOdpWorld, l: Local): Co {
  const q = w.quarter;
  const end = w.probe![0];
  const mm = l.proc.mm!;
  for (let i = 0; ; i++) {
    if (i === PROBE_READS) yield* w.unmapDone.wait();
    const after = w.unmapped;
    const page = 3 * q + w.k.prng.below(w.pages - 3 * q);
    const wr = read(sge(l, PROBE), w.base + page * PAGE_SIZE, w.mr!.rkey);
    const st = yield* expect(
      w,
      end,
      wr,
      ...(after ? [] : (['SUCCESS'] as const)),
      'REM_ACCESS_ERR',
    );
    if (st === 'SUCCESS') {
      w.values.check(
        'probe READ',
        page,
        yield* cpuRead(mm, l.base + PROBE * PAGE_SIZE, PAGE_SIZE),
        0,
      );
      yield* sleep(THINK_NS);
      continue;
    }
    w.checks++;
    if (!w.values.isUnmapped(page))
      w.k.bug(
        'rdma-completion',
        `a probe READ of page ${page} failed before the server unmapped it`,
      );
    return;
  }
}
