// What a user of RDMA on-demand paging sees (spec rdma-odp.md §3): nothing pinned or charged, MRs
// larger than RAM, pages swapped or discarded under a registered MR, the device following the
// process's mappings where a pinned MR keeps its pages.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { observations } from '../../src/check/observations.ts';
import { ibRegMr } from '../../src/drivers/rdma/core/verbs.ts';
import { Kernel, TimedStrategy } from '../../src/index.ts';
import { MADV_DONTNEED } from '../../src/mm/constants.ts';
import { madvise } from '../../src/mm/madvise.ts';
import { shrinkMemory } from '../../src/mm/reclaim.ts';
import { resolveParams } from '../../src/scenarios/index.ts';
import { rdmaPinnedVsOdpScenario } from '../../src/scenarios/rdma-pinned-vs-odp.ts';
import { connect, firstInt, mapPages, ODP_ALL, P, post, runRdma } from '../drivers/rdma/kit.ts';

function observed(set: Record<string, number>): readonly string[] {
  const k = new Kernel({ strategy: new TimedStrategy() });
  rdmaPinnedVsOdpScenario.build(k, resolveParams(rdmaPinnedVsOdpScenario, set));
  const r = k.run();
  assert.equal(r.ok, true, r.bug?.message);
  return observations(k);
}

test('pinned vs ODP: re-mmap, fork + parent write, and registrations past RLIMIT_MEMLOCK and RAM', () => {
  assert.deepEqual(observed({}), [
    'pinned MR after munmap + mmap + write 2: reads 1',
    'ODP MR after munmap + mmap + write 2: reads 2',
    'pinned MR after fork + parent write 4 (fork copies pinned pages): reads 4',
    'ODP MR after fork + parent write 4: reads 4',
    'pinned MR of 17 pages (more than RLIMIT_MEMLOCK): ENOMEM',
    'ODP MR of 17 pages (more than RLIMIT_MEMLOCK): registered',
    '  locked memory it charged: 0 pages',
    '  its last page (5) through it: reads 5',
    'pinned MR of 80 pages (more than RAM): ENOMEM',
    'ODP MR of 80 pages (more than RAM): registered',
    '  locked memory it charged: 0 pages',
    '  its last page (5) through it: reads 5',
  ]);
  assert.ok(
    observed({ earlycow: 0 }).includes(
      'pinned MR after fork + parent write 4 (before v5.9): reads 3',
    ),
  );
});

test('pages of an ODP MR may be swapped out and discarded: the device refaults and sees what the CPU sees', () => {
  const seen: number[] = [];
  const r = runRdma(function* (w) {
    const sbuf = yield* mapPages(w.server, 4, (i) => 100 + i);
    const cbuf = yield* mapPages(w.client, 1, () => 0);
    const smr = yield* ibRegMr(w.server, w.sep.pd, sbuf, 4 * P, ODP_ALL);
    const cmr = yield* ibRegMr(w.client, w.cep.pd, cbuf, P, ODP_ALL);
    const { c } = yield* connect(w);
    const read = function* (page: number) {
      const wc = yield* post(c, {
        opcode: 'RDMA_READ',
        sgList: [{ addr: cbuf, length: P, lkey: cmr.lkey }],
        remoteAddr: sbuf + page * P,
        rkey: smr.rkey,
      });
      assert.equal(wc.status, 'SUCCESS');
      return yield* firstInt(w.client, cbuf);
    };
    seen.push(yield* read(1));
    yield* shrinkMemory(w.machine, 64);
    seen.push(w.server.mm!.rss, yield* read(1), yield* read(3));
    yield* madvise(w.server.mm!, sbuf + P, P, MADV_DONTNEED);
    seen.push(yield* read(1), yield* firstInt(w.server, sbuf + P));
  });
  assert.equal(r.ok, true, r.bug?.message);
  // Read, everything swapped (nothing resident), read back from swap; discarded: zeros.
  assert.deepEqual(seen, [101, 0, 101, 103, 0, 0]);
});
