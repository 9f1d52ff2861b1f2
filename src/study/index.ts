/**
 * The studies `odpsim study` runs, by name: what each answers, the list options it takes, and
 * how it is run. The CLI parses the lists; each study checks its own values (EINVAL).
 */
import { Errno } from '../lib/errors.ts';
import { studyDesigns } from './designs-study.ts';
import { studyFirstTouch } from './first-touch.ts';
import { studyNpf } from './npf.ts';
import { studyOvercommit } from './overcommit.ts';
import { studyRnr } from './rnr.ts';
import type { StudyOptions, StudyResult } from './study.ts';

/** A list option of a study: its name (the CLI's --name) and what it holds. */
export interface StudyListOption {
  readonly name: string;
  readonly help: string;
  /** Sizes accept K and M suffixes (KiB, MiB). */
  readonly sizes?: boolean;
}

/** One study. */
export interface StudyEntry {
  readonly name: string;
  readonly summary: string;
  readonly lists: readonly StudyListOption[];
  run(opts: StudyOptions, lists: Readonly<Record<string, readonly number[]>>): StudyResult;
}

export const STUDIES: readonly StudyEntry[] = [
  {
    name: 'npf',
    summary:
      'the measurements of the ASPLOS 2017 paper on NIC page faults (P1-P8), paper against model',
    lists: [
      {
        name: 'scale',
        help: "divide the P7/P8 memory sizes by this power of two (default 16; 1 is the paper's 8 GiB, a minute or more)",
      },
    ],
    run: (opts, lists) =>
      studyNpf({ ...opts, ...(lists.scale ? { scale: single('scale', lists.scale) } : {}) }),
  },
  {
    name: 'first-touch',
    summary:
      'first and steady-state RDMA WRITE, ODP against pinned, with and without prefetch, 4 KiB to 4 MiB',
    lists: [
      {
        name: 'sizes',
        help: 'message sizes (K, M suffixes; 4K to 16M; default 4K,16K,64K,256K,1M,4M)',
        sizes: true,
      },
    ],
    run: (opts, lists) =>
      studyFirstTouch({ ...opts, ...(lists.sizes ? { sizes: lists.sizes } : {}) }),
  },
  {
    name: 'rnr',
    summary: 'completion latency of a responder fault against min_rnr_timer and rnr_retry',
    lists: [
      { name: 'timers', help: 'min_rnr_timer encodings (0 to 31; 0 is 655.36 ms)' },
      { name: 'retries', help: 'rnr_retry values (0 to 7; 7 retries for ever)' },
    ],
    run: (opts, lists) =>
      studyRnr({
        ...opts,
        ...(lists.timers ? { timers: lists.timers } : {}),
        ...(lists.retries ? { retries: lists.retries } : {}),
      }),
  },
  {
    name: 'overcommit',
    summary: 'throughput and faults/s as the registered buffer grows past RAM, ODP against pinned',
    lists: [
      {
        name: 'pressures',
        help: 'buffer sizes as multiples of RAM (above 0, at most 8; default 0.5,0.75,1,1.5,2,3)',
      },
    ],
    run: (opts, lists) =>
      studyOvercommit({ ...opts, ...(lists.pressures ? { pressures: lists.pressures } : {}) }),
  },
  {
    name: 'designs',
    summary: 'the ODP designs (2014, interim, today, a list) on one workload at 1 to 10,000 MRs',
    lists: [{ name: 'mrs', help: 'MR counts (1 to 100000 each; default 1,10,100,1000,10000)' }],
    run: (opts, lists) => studyDesigns({ ...opts, ...(lists.mrs ? { mrs: lists.mrs } : {}) }),
  },
];

function single(option: string, values: readonly number[]): number {
  if (values.length !== 1)
    throw new Errno('EINVAL', `--${option} takes one value, got ${values.length}`);
  return values[0]!;
}

/** The study called `name`, or undefined. */
export function findStudy(name: string): StudyEntry | undefined {
  return STUDIES.find((s) => s.name === name);
}
