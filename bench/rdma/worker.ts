/**
 * One RDMA benchmark child process: `worker.ts <case> <reps>` measures one case and prints one
 * JSON line. Cases: `faults` (RDMA WRITEs each taking a responder page fault on an ODP MR, and
 * the same first writes through a pinned MR), `steady` (WRITEs to pages already mapped, ODP
 * and pinned), `explore` and `explore-io` (pct runs of rdma-odp or mmap-io-unplug, and of
 * dmirror-race as the reference). Tracing is off (no subscriber): no oracle runs in the timed
 * worlds.
 */
import { explore } from '../../src/check/explore.ts';
import { IB_ACCESS_ON_DEMAND } from '../../src/drivers/rdma/core/ib-verbs.ts';
import type { IbMr } from '../../src/drivers/rdma/core/objects.ts';
import { ibRegMr } from '../../src/drivers/rdma/core/verbs.ts';
import { Mlx5Device } from '../../src/drivers/rdma/hw/mlx5/main.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import type { Co } from '../../src/kernel/task.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { Machine } from '../../src/mm/machine.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { createProcess, type Process } from '../../src/mm/process.ts';
import { findScenario, resolveParams } from '../../src/scenarios/index.ts';
import {
  connectedPair,
  openEndpoint,
  postAndWait,
  type QpEnd,
} from '../../src/scenarios/rdma-kit.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const collect = gc;

/** Pages (one WRITE each) per repetition of the WRITE cases. */
const PAGES = 4_000;
/** Explore runs per repetition. */
const RUNS = 200;
const ALL = 0xf;

export interface RdmaResult {
  n: number;
  /** ns per operation, one per repetition: the measure and its same-run baseline. */
  model: number[];
  bare: number[];
}

/** A world with a client WRITE-ing one page at a time into a server MR of `access`. */
function writeWorld(access: number, rounds: number): { k: Kernel; timed: () => number } {
  const k = new Kernel({ maxSteps: Number.MAX_SAFE_INTEGER });
  const machine = new Machine(k, { frames: 2 * PAGES + 64, legacyNotifierCore: true });
  const server = createProcess(machine, { capIpcLock: true });
  const client = createProcess(machine, { capIpcLock: true });
  let t0 = 0;
  let t1 = 0;
  k.spawn('bench', function* () {
    const sbuf = yield* mapAnon(server, PAGES);
    for (let p = 0; p < PAGES; p++) yield* cpuWriteU32(server.mm!, sbuf + p * PAGE_SIZE, p);
    const cbuf = yield* mapAnon(client, 1);
    yield* cpuWriteU32(client.mm!, cbuf, 1);
    const s = yield* openEndpoint(new Mlx5Device(machine, { name: 'mlx5_1' }), server);
    const c = yield* openEndpoint(new Mlx5Device(machine, { name: 'mlx5_0' }), client);
    const smr = yield* ibRegMr(server, s.pd, sbuf, PAGES * PAGE_SIZE, access);
    const cmr = yield* ibRegMr(client, c.pd, cbuf, PAGE_SIZE, ALL);
    const [end] = yield* connectedPair(c, s, { minRnrTimer: 1 });
    for (let r = 0; r < rounds; r++) {
      if (r === rounds - 1) t0 = performance.now();
      yield* writes(end, cbuf, cmr, sbuf, smr);
      if (r === rounds - 1) t1 = performance.now();
    }
  });
  return { k, timed: () => ((t1 - t0) * 1e6) / PAGES };
}

function* mapAnon(p: Process, pages: number): Co<number> {
  return yield* mmap(p.mm!, {
    len: pages * PAGE_SIZE,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS,
  });
}

function* writes(end: QpEnd, cbuf: number, cmr: IbMr, sbuf: number, smr: IbMr): Co {
  for (let p = 0; p < PAGES; p++) {
    const wc = yield* postAndWait(end, {
      wrId: p,
      opcode: 'RDMA_WRITE',
      sgList: [{ addr: cbuf, length: 64, lkey: cmr.lkey }],
      remoteAddr: sbuf + p * PAGE_SIZE,
      rkey: smr.rkey,
    });
    if (wc.status !== 'SUCCESS') throw new Error(`WRITE ${p}: ${wc.status}`);
  }
}

/** ns per WRITE in the last of `rounds` passes over the pages (1: first touch; 2: steady). */
function measure(access: number, rounds: number): number {
  collect();
  const w = writeWorld(access, rounds);
  const r = w.k.run();
  if (!r.ok) throw new Error(`world failed: ${r.bug?.message}`);
  return w.timed();
}

function explorePerRun(name: string, set: Record<string, number>): number {
  collect();
  const s = findScenario(name);
  const params = resolveParams(s, set);
  const t0 = performance.now();
  const r = explore((k) => s.build(k, params), { strategy: 'pct', seed: 1, runs: RUNS });
  if (r.failure !== null) throw new Error(`${name}: ${r.failure.bug.message}`);
  return ((performance.now() - t0) * 1e6) / RUNS;
}

const [what, repsArg] = process.argv.slice(2);
const reps = Number(repsArg ?? '5');
const out: RdmaResult = { n: what?.startsWith('explore') ? RUNS : PAGES, model: [], bare: [] };
for (let i = 0; i < reps; i++) {
  if (what === 'faults') {
    out.model.push(measure(ALL | IB_ACCESS_ON_DEMAND, 1));
    out.bare.push(measure(ALL, 1));
  } else if (what === 'steady') {
    out.model.push(measure(ALL | IB_ACCESS_ON_DEMAND, 2));
    out.bare.push(measure(ALL, 2));
  } else if (what === 'explore') {
    out.model.push(explorePerRun('rdma-odp', {}));
    out.bare.push(explorePerRun('dmirror-race', {}));
  } else if (what === 'explore-io') {
    out.model.push(explorePerRun('mmap-io-unplug', {}));
    out.bare.push(explorePerRun('dmirror-race', {}));
  } else throw new Error(`unknown case ${what}`);
}
console.log(JSON.stringify(out));
