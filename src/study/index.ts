/**
 * The studies `odpsim study` runs, by name: what each answers, the list options it takes, and
 * how it is run. The CLI parses the lists; each study checks its own values (EINVAL).
 */
import { Errno } from '../lib/errors.ts';
import { DEFAULT_MR_COUNTS, studyDesigns } from './designs-study.ts';
import { FIRST_TOUCH_SIZES, studyFirstTouch } from './first-touch.ts';
import { DEFAULT_NPF_SCALE, studyNpf } from './npf.ts';
import { OVERCOMMIT_MAX_PRESSURE, OVERCOMMIT_PRESSURES, studyOvercommit } from './overcommit.ts';
import { RNR_STUDY_RETRIES, RNR_STUDY_TIMERS, studyRnr } from './rnr.ts';
import type { StudyOptions, StudyResult } from './study.ts';

/** A list option of a study: its name (the CLI's --name) and what it holds. */
export interface StudyListOption {
  readonly name: string;
  readonly help: string;
  /** What the option's value is called in the help (default `list`). */
  readonly value?: string;
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

/** The studies of `odpsim study`, in the order its help lists them. */
export const STUDIES: readonly StudyEntry[] = [
  {
    name: 'npf',
    summary:
      'the measurements of the ASPLOS 2017 paper on NIC page faults (P1-P8), paper against model',
    lists: [
      {
        name: 'scale',
        value: 'n',
        help: `divide the P7/P8 memory sizes by this power of two (default ${DEFAULT_NPF_SCALE}; 1 is the paper's 8 GiB: about 3 minutes and 4 GB of heap, so run node with --max-old-space-size=8192)`,
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
        help: `message sizes (K, M suffixes; 4K to 16M; default ${FIRST_TOUCH_SIZES.map((b) => (b >= 1 << 20 ? `${b >> 20}M` : `${b >> 10}K`)).join(',')})`,
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
      {
        name: 'timers',
        help: `min_rnr_timer encodings (0 to 31; 0 is 655.36 ms; default ${RNR_STUDY_TIMERS.join(',')})`,
      },
      {
        name: 'retries',
        help: `rnr_retry values (0 to 7; 7 retries for ever; default ${RNR_STUDY_RETRIES.join(',')})`,
      },
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
        help: `buffer sizes as multiples of RAM (above 0, at most ${OVERCOMMIT_MAX_PRESSURE}; default ${OVERCOMMIT_PRESSURES.join(',')})`,
      },
    ],
    run: (opts, lists) =>
      studyOvercommit({ ...opts, ...(lists.pressures ? { pressures: lists.pressures } : {}) }),
  },
  {
    name: 'designs',
    summary: 'the ODP designs (2014, interim, today, a list) on one workload at 1 to 10,000 MRs',
    lists: [
      { name: 'mrs', help: `MR counts (1 to 100000 each; default ${DEFAULT_MR_COUNTS.join(',')})` },
    ],
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
