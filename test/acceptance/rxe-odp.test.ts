// The software RDMA device's ODP (rxe_odp.c, 6.14 and later): copies fault pages in
// synchronously and run with umem_mutex held, an invalidation waits for them, and regression
// case O5 (spec rdma-odp.md §4): the EFAULT of a failed re-check must release umem_mutex.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installOracles } from '../../src/check/oracles/install.ts';
import {
  IB_ACCESS_ON_DEMAND,
  IB_ACCESS_REMOTE_READ,
} from '../../src/drivers/rdma/core/ib-verbs.ts';
import { ibUverbsClose } from '../../src/drivers/rdma/core/uverbs.ts';
import { ibDeregMr, ibRegMr } from '../../src/drivers/rdma/core/verbs.ts';
import { RxeDevice } from '../../src/drivers/rdma/sw/rxe/main.ts';
import type { RxeMr } from '../../src/drivers/rdma/sw/rxe/mr.ts';
import { rxeOdpMrCopy } from '../../src/drivers/rdma/sw/rxe/odp.ts';
import { type Co, explore, isErrno, type Kernel } from '../../src/index.ts';
import { join } from '../../src/kernel/context.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { Machine } from '../../src/mm/machine.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { munmap } from '../../src/mm/munmap.ts';
import { createProcess, exitMm } from '../../src/mm/process.ts';
import { openEndpoint } from '../../src/scenarios/rdma-kit.ts';

/**
 * O5's world: a read-only ODP MR (REMOTE_READ only) gets a copy *into* it — no verb issues one
 * (every path checks rights that make the MR writable), so the copy stands for a kernel-internal
 * caller — while another thread munmaps the buffer. The copy's re-check fails (the fault maps
 * the page read-only): EFAULT.
 */
function o5World(outcome: string[]) {
  return (k: Kernel) => {
    const machine = new Machine(k, { frames: 16 });
    installOracles(k, machine);
    const rxe = new RxeDevice(machine);
    const proc = createProcess(machine);
    k.spawn('main', function* () {
      const mm = proc.mm!;
      const at = yield* mmap(mm, {
        len: PAGE_SIZE,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      const ep = yield* openEndpoint(rxe, proc);
      const mr = (yield* ibRegMr(
        proc,
        ep.pd,
        at,
        PAGE_SIZE,
        IB_ACCESS_REMOTE_READ | IB_ACCESS_ON_DEMAND,
      )) as RxeMr;
      const copier = k.spawn('responder', function* (): Co {
        try {
          yield* rxeOdpMrCopy(mr, at, new Uint8Array(8), true);
          outcome.push('copied');
        } catch (e) {
          if (!isErrno(e)) throw e;
          outcome.push(e.code);
        }
      });
      yield* munmap(mm, at, PAGE_SIZE);
      yield* join(copier);
      yield* ibDeregMr(mr);
      yield* ibUverbsClose(ep.file);
      yield* exitMm(proc);
    });
  };
}

test('O5: a failed re-check returns EFAULT with umem_mutex released; the 6.14 code keeps it and the munmap behind it never finishes (dfs bound 2)', () => {
  const outcome: string[] = [];
  const fixed = explore(o5World(outcome), {
    strategy: 'dfs',
    preemptions: 2,
    runs: 2000,
    minimise: false,
  });
  assert.equal(fixed.failure, null, fixed.failure?.bug.message);
  assert.equal(fixed.dfs?.exhausted, true);
  assert.ok(outcome.length > 0 && outcome.every((o) => o === 'EFAULT'), outcome.join());
  const old = explore(o5World([]), {
    strategy: 'dfs',
    preemptions: 2,
    runs: 2000,
    mutants: ['rxe.recheck-keeps-lock'],
  });
  assert.ok(old.failure !== null, 'O5 is found');
  assert.ok(
    ['deadlock', 'exit-holding-lock'].includes(old.failure.bug.rule),
    old.failure.bug.message,
  );
  assert.match(old.failure.bug.message, /umem_mutex/);
});
