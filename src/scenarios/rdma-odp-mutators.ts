// The server threads of the rdma-odp scenario: what a process does to memory a NIC reaches
// on demand, and the receiver of the client's SENDs.
import { ibPostRecv } from '../drivers/rdma/core/verbs.ts';
import { join, sleep } from '../kernel/context.ts';
import type { Co, Task } from '../kernel/task.ts';
import { MADV_DONTNEED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/constants.ts';
import { cpuRead, cpuWrite } from '../mm/cpu-access.ts';
import { madvise } from '../mm/madvise.ts';
import { mprotect } from '../mm/mprotect.ts';
import { munmap } from '../mm/munmap.ts';
import { exitMm, forkProcess, type Process } from '../mm/process.ts';
import { shrinkMemory } from '../mm/reclaim.ts';
import { pageOf } from './page-values.ts';
import { type RdmaOdpWorld, RECV_PAGES, RO_VALUE, THINK_NS } from './rdma-odp.ts';

/**
 * The server's threads, started once the client is connected: munmap of Q3, mprotect
 * toggling of Q1, fork with a child that reads and writes its copy of Q0 and Q2, DONTNEED of
 * Q2, and reclaim. (The receiver is started apart: it lives as long as the client sends.)
 */
export function serverMutators(w: RdmaOdpWorld, proc: Process): Task[] {
  const { k, machine, values, quarter: q } = w;
  const mm = proc.mm!;
  const at = (page: number) => w.base + page * PAGE_SIZE;
  return [
    k.spawn('munmap', function* () {
      yield* sleep(THINK_NS * 6);
      for (let p = 3 * q; p < w.pages; p++) values.unmap(p);
      yield* munmap(mm, at(3 * q), (w.pages - 3 * q) * PAGE_SIZE);
      w.unmapped = true;
      w.unmapDone.completeAll();
    }),
    k.spawn('mprotect', function* () {
      for (let r = 0; r < w.rounds; r++) {
        yield* sleep(THINK_NS * 3);
        yield* mprotect(mm, at(q), q * PAGE_SIZE, PROT_READ);
        yield* sleep(THINK_NS * 2);
        yield* mprotect(mm, at(q), q * PAGE_SIZE, PROT_READ | PROT_WRITE);
      }
    }),
    k.spawn('fork', function* () {
      yield* sleep(THINK_NS * 5);
      const child = yield* forkProcess(proc);
      const kid = k.spawn('child', () => childLife(w, child));
      yield* join(kid);
    }),
    k.spawn('madvise', function* () {
      yield* sleep(THINK_NS * 4);
      for (let p = 2 * q; p < 3 * q; p++) values.allow(p, 0);
      yield* madvise(mm, at(2 * q), q * PAGE_SIZE, MADV_DONTNEED);
    }),
    k.spawn('kswapd', function* () {
      for (let r = 0; r < 2 * w.rounds; r++) {
        yield* sleep(THINK_NS * 3);
        yield* shrinkMemory(machine, q);
      }
    }),
  ];
}

/**
 * The forked child reads its copy of Q0 and Q2 (each page holds a value the parent had) and
 * writes values of its own there (copy-on-write: neither the parent nor the NIC may see them).
 */
function* childLife(w: RdmaOdpWorld, child: Process): Co {
  const mm = child.mm!;
  const q = w.quarter;
  const pages = [...Array.from({ length: q - 1 }, (_, i) => i + 1), 2 * q, 3 * q - 1];
  for (const p of pages) {
    if (w.values.isUnmapped(p)) continue;
    w.values.check('forked child', p, yield* cpuRead(mm, w.base + p * PAGE_SIZE, PAGE_SIZE), 0);
    yield* cpuWrite(mm, w.base + p * PAGE_SIZE, pageOf(-1 - p));
  }
  yield* cpuWrite(mm, w.base, new Uint8Array(16).fill(0xee));
  yield* exitMm(child);
}

/**
 * The receiver: one receive at a time into the two-page buffer; each message must be the
 * client's next SEND, its first page the value the client put there, its second the client's
 * read-only page.
 */
export function* receiver(w: RdmaOdpWorld): Co {
  const [, end] = w.main!;
  const mm = w.server!.proc.mm!;
  for (let i = 0; ; i++) {
    if (w.clientDone && i >= w.sent.length) return;
    ibPostRecv(end.qp, {
      wrId: i,
      sgList: [{ addr: w.recvBase, length: RECV_PAGES * PAGE_SIZE, lkey: w.recvMr!.lkey }],
    });
    yield* end.cq.wq.waitEvent(() => end.cq.entries.length > 0 || w.clientDone);
    const wc = end.cq.poll(1)[0];
    if (wc === undefined) return;
    w.checks++;
    if (wc.status !== 'SUCCESS')
      w.k.bug('rdma-completion', `the server's receive ${i} completed with ${wc.status}`);
    const got = yield* cpuRead(mm, w.recvBase, RECV_PAGES * PAGE_SIZE);
    const ints = new Int32Array(got.buffer);
    const want = [w.sent[i], RO_VALUE];
    for (let part = 0; part < 2; part++) {
      const v = ints[(part * PAGE_SIZE) / 4];
      if (v !== want[part] || ints[((part + 1) * PAGE_SIZE) / 4 - 1] !== v)
        w.k.bug(
          'rdma-completion',
          `SEND ${i}: page ${part} of the message holds ${v}, expected ${String(want[part])}`,
        );
    }
  }
}
