// The commander program of `odpsim`: commands, options and exit statuses.
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_SCENARIO } from '../scenarios/index.ts';
import { STUDIES } from '../study/index.ts';
import { VERSION } from '../version.ts';
import { costsCommand } from './costs.ts';
import { type ExploreCommandOptions, exploreCommand } from './explore.ts';
import type { Io } from './io.ts';
import { listCommand } from './list.ts';
import {
  collectList,
  collectSet,
  collectSweep,
  EXIT,
  intOption,
  type SweepSets,
  shardOption,
  strategyList,
  UsageError,
} from './options.ts';
import { type ReplayCommandOptions, replayCommand } from './replay.ts';
import { type RunCommandOptions, runCommand } from './run.ts';
import { studyCommand } from './study.ts';
import { type SweepCommandOptions, sweepCommand } from './sweep.ts';

const U32 = 0xffff_ffff;

/** Builds the program; each action stores its exit status in `status.code`. */
function buildProgram(io: Io, status: { code: number }): Command {
  const program = new Command('odpsim')
    .description(
      // One line: commander wraps it to the terminal width itself.
      'An executable model of Linux on-demand paging: run scenarios in which devices mirror ' +
        'process memory through MMU notifiers, explore their interleavings, replay races.',
    )
    .version(VERSION)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    })
    .addHelpText(
      'after',
      '\nExit status: 0 clean, 1 a bug was found (or reproduced), 2 usage error, 3 internal error,\n' +
        '4 clean but an output file could not be written, 130 interrupted (Ctrl-C; explore says where to resume).',
    );

  // Runs an action, turning a UsageError into commander's usage error (exit 2).
  const guard =
    <A extends unknown[]>(f: (...args: A) => number | Promise<number>) =>
    async (...args: A): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      try {
        status.code = await f(...args);
      } catch (e) {
        if (e instanceof UsageError)
          cmd.error(`error: ${e.message}`, { exitCode: EXIT.usage, code: 'odpsim.usage' });
        throw e;
      }
    };

  const setOption = () =>
    new Option(
      '--set <name=value>',
      'set a scenario parameter (repeatable; see odpsim list)',
    ).argParser(collectSet);
  const mutantOption = () =>
    new Option('--mutant <name>', 'enable a mutant (repeatable; see odpsim list)').argParser(
      collectList,
    );
  const traceOption = (what: string) =>
    new Option('--trace <file>', `write ${what} as Chrome trace JSON (open in Perfetto)`);
  const logOption = (what: string) =>
    new Option('--log <file>', `write ${what} as a text log, one event per line`);
  const htmlOption = (what: string) =>
    new Option(
      '--html <file>',
      `write ${what} as a self-contained web view: task lanes and the page grid through time`,
    );
  const costOption = () =>
    new Option(
      '--cost <name=value>',
      'override a cost: NAME=128us, NAME/page=10ns, or NAME=min:..,p50:..,p95:..,p99:..,max:.. (repeatable; see odpsim costs)',
    ).argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
  const costsOption = () =>
    new Option('--costs <file>', 'override costs from a JSON object { "NAME": "128us", ... }');
  const timelineOption = () =>
    new Option('--timeline <detail>', 'timeline detail: the protocol, or every event (locks too)')
      .choices(['protocol', 'full'])
      .default('protocol');

  program
    .command('run', { isDefault: true })
    .description(
      `run a scenario once in virtual-time order and report statistics and oracle verdicts (default scenario: ${DEFAULT_SCENARIO})`,
    )
    .argument('[scenario]', 'scenario name (see odpsim list)', DEFAULT_SCENARIO)
    .addOption(setOption())
    .addOption(mutantOption())
    .option('--seed <n>', "seed of the world's PRNG", intOption(0, U32), 1)
    .option(
      '--max-steps <n>',
      'step limit of the run (a livelock guard; large scenarios need millions)',
      intOption(1, Number.MAX_SAFE_INTEGER),
      200_000_000,
    )
    .addOption(traceOption('the run'))
    .addOption(logOption('the run'))
    .addOption(htmlOption('the run'))
    .addOption(costOption())
    .addOption(costsOption())
    .option('--json', 'print the report as JSON')
    .action(
      guard((scenario: string, o: Parsed<RunCommandOptions>) =>
        runCommand(io, scenario, withDefaults(o)),
      ),
    );

  program
    .command('explore')
    .description('explore the interleavings of a scenario; report the first violation, minimised')
    .argument('<scenario>', 'scenario name (see odpsim list)')
    .addOption(
      new Option('--strategy <name>', 'how schedules are chosen')
        .choices(['random', 'pct', 'dfs'])
        .default('pct'),
    )
    .option('--runs <n>', 'runs to try', intOption(1, Number.MAX_SAFE_INTEGER), 1000)
    .option('--seed <n>', 'seed of the exploration', intOption(0, U32), 1)
    .option('--depth <d>', 'pct only: bug depth (default: 3)', intOption(1, 64))
    .option('--preemptions <p>', 'dfs only: preemption bound (default: 2)', intOption(0, 3))
    .option(
      '--max-steps <n>',
      "step limit per run (default: 10x the world's run without preemption, at least 100,000)",
      intOption(1, Number.MAX_SAFE_INTEGER),
    )
    .option(
      '--start-run <n>',
      'index of the first run (runs are numbered from 0; resumes an interrupted exploration)',
      intOption(0, Number.MAX_SAFE_INTEGER),
      0,
    )
    .option(
      '--jobs <n>',
      'worker threads (default: every core, when the exploration is big enough to gain)',
      intOption(1, 256),
    )
    .option(
      '--shard <i/n>',
      'explore only the i-th of n equal parts of the runs (for a CI matrix or many machines)',
      shardOption,
    )
    .addOption(mutantOption())
    .addOption(setOption())
    .addOption(timelineOption())
    .addOption(traceOption('the minimised violation'))
    .addOption(logOption('the minimised violation'))
    .addOption(htmlOption('the minimised violation'))
    .option(
      '--coverage',
      'after the result, list which notifier callbacks (by client kind and event), mm paths and racing pairs of mm paths the explored runs reached, and which they did not',
    )
    .option('--json', 'print the report as JSON')
    .action(
      guard((scenario: string, o: Parsed<RawExploreOptions>) =>
        exploreCommand(io, scenario, exploreOptions(withDefaults(o))),
      ),
    );

  program
    .command('sweep')
    .description(
      'explore every combination of parameter values and strategies; print a table of outcomes',
    )
    .argument('<scenario>', 'scenario name (see odpsim list)')
    .option(
      '--set <name=values>',
      'values of a parameter: a list (pages=4,8,64) or a range (frames=2..16); repeatable',
      collectSweep,
    )
    .addOption(
      new Option('--strategy <names>', 'strategies, comma separated (random, pct, dfs)')
        .argParser(strategyList)
        .default(['pct'], 'pct'),
    )
    .option('--runs <n>', 'runs per combination', intOption(1, Number.MAX_SAFE_INTEGER), 1000)
    .option('--seed <n>', 'seed of each exploration', intOption(0, U32), 1)
    .option(
      '--max-steps <n>',
      'step limit per run (default: sized from each world)',
      intOption(1, Number.MAX_SAFE_INTEGER),
    )
    .option(
      '--jobs <n>',
      'worker threads per exploration (default: as explore; dfs rows run on one)',
      intOption(1, 256),
    )
    .option('--fail-fast', 'stop at the first combination with a violation')
    .addOption(mutantOption())
    .option('--json', 'print the table as JSON')
    .action(
      guard((scenario: string, o: SweepParsed) =>
        sweepCommand(io, scenario, {
          ...o,
          sets: o.set ?? [],
          mutant: o.mutant ?? [],
          failFast: o.failFast === true,
          json: o.json === true,
        }),
      ),
    );

  program
    .command('replay')
    .description('replay a token from run or explore: the timeline, statistics and verdicts')
    .argument('<token>', 'replay token (odp2....)')
    .addOption(timelineOption())
    .addOption(traceOption('the replayed run'))
    .addOption(logOption('the replayed run'))
    .addOption(htmlOption('the replayed run'))
    .option(
      '--world <module>',
      "replay on your own world: a module whose default export is a WorldBuilder (see the README's library section)",
    )
    .option('--json', 'print the report as JSON')
    .action(
      guard((token: string, o: ReplayCommandOptions & { json?: boolean }) =>
        replayCommand(io, token, { ...o, json: o.json === true }),
      ),
    );

  const study = program
    .command('study')
    .description(
      `answer a question about ODP with numbers, in virtual time under the cost model: ${STUDIES.map((x) => x.name).join(', ')} (each prints tables and writes plots)`,
    )
    .argument('<study>', STUDIES.map((x) => `${x.name}: ${x.summary}`).join('; '));
  for (const list of new Map(
    STUDIES.flatMap((x) => x.lists.map((l) => [l.name, l] as const)),
  ).values())
    study.option(
      `--${list.name} <${list.value ?? 'list'}>`,
      `${STUDIES.filter((x) => x.lists.some((l) => l.name === list.name))
        .map((x) => x.name)
        .join(', ')} only: ${list.help}`,
    );
  study
    .option('--seed <n>', "seed of the worlds' PRNGs and of the costs drawn", intOption(0, U32), 1)
    .addOption(costOption())
    .addOption(costsOption())
    .option('--out <dir>', 'directory for the plots (SVG files and an HTML page)', 'odpsim-plots')
    .option('--no-plots', 'write no plots')
    .option('--json', 'print the tables and the raw series as JSON')
    .action(
      guard((what: string, o: StudyParsed) =>
        studyCommand(io, what, {
          lists: Object.fromEntries(
            STUDIES.flatMap((x) => x.lists).map((l) => [l.name, o[l.name] as string | undefined]),
          ),
          seed: o.seed,
          cost: o.cost ?? [],
          costs: o.costs,
          out: o.plots ? o.out : null,
          json: o.json === true,
        }),
      ),
    );

  program
    .command('costs')
    .description('list the cost table: what each modelled operation charges, and the source')
    .option('--json', 'print the table as JSON')
    .action(guard((o: { json?: boolean }) => costsCommand(io, { json: o.json === true })));

  program
    .command('list')
    .description('list the scenarios (with parameters and defaults) and the mutants')
    .option('--json', 'print the list as JSON')
    .action(guard((o: { json?: boolean }) => listCommand(io, { json: o.json === true })));

  // After an error, each command prints its usage line (and where the details are).
  for (const cmd of program.commands)
    cmd.showHelpAfterError(
      `Usage: odpsim ${cmd.name()} ${cmd.usage()}\n(odpsim ${cmd.name()} --help for the options)`,
    );
  return program;
}

/** What commander hands an action: the repeatable and boolean options may be missing. */
type Parsed<T> = Omit<T, 'set' | 'mutant' | 'json'> & {
  set?: Record<string, number>;
  mutant?: string[];
  json?: boolean;
};

/** What commander hands the study action (the list options by name). */
type StudyParsed = Record<string, unknown> & {
  seed: number;
  cost?: string[];
  costs?: string;
  out: string;
  plots: boolean;
  json?: boolean;
};

/** What commander hands the sweep action. */
type SweepParsed = Omit<SweepCommandOptions, 'sets' | 'mutant' | 'failFast' | 'json'> & {
  set?: SweepSets;
  mutant?: string[];
  failFast?: boolean;
  json?: boolean;
};

function withDefaults<T>(o: Parsed<T>): T {
  return { ...o, set: o.set ?? {}, mutant: o.mutant ?? [], json: o.json === true } as T;
}

/**
 * Options of explore as commander parses them: the strategy-specific ones are undefined when
 * not given, so one that does not apply can be refused rather than ignored.
 */
type RawExploreOptions = Omit<ExploreCommandOptions, 'depth' | 'preemptions'> & {
  depth?: number;
  preemptions?: number;
};

/** Refuses options the strategy does not use; fills in the defaults of those it does. */
function exploreOptions(o: RawExploreOptions): ExploreCommandOptions {
  if (o.depth !== undefined && o.strategy !== 'pct')
    throw new UsageError(`--depth is for --strategy pct only (this is ${o.strategy})`);
  if (o.preemptions !== undefined && o.strategy !== 'dfs')
    throw new UsageError(`--preemptions is for --strategy dfs only (this is ${o.strategy})`);
  return { ...o, depth: o.depth ?? 3, preemptions: o.preemptions ?? 2 };
}

/**
 * Runs `odpsim` with the arguments after the program name; resolves to the exit status
 * (see {@link EXIT}).
 */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const status = { code: EXIT.ok as number };
  const program = buildProgram(io, status);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return status.code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        e.code === 'commander.help'
      )
        return e.exitCode;
      return EXIT.usage;
    }
    io.err(`odpsim: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return EXIT.internal;
  }
}
