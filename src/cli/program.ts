// The commander program of `odpsim`: commands, options and exit statuses.
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_SCENARIO } from '../scenarios/index.ts';
import { VERSION } from '../version.ts';
import { type ExploreCommandOptions, exploreCommand } from './explore.ts';
import type { Io } from './io.ts';
import { listCommand } from './list.ts';
import { collectList, collectSet, EXIT, intOption, UsageError } from './options.ts';
import { type ReplayCommandOptions, replayCommand } from './replay.ts';
import { type RunCommandOptions, runCommand } from './run.ts';
import { studyCommand } from './study.ts';

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
      '\nExit status: 0 clean, 1 a bug was found (or reproduced), 2 usage error, 3 internal error.',
    );

  // Runs an action, turning a UsageError into commander's usage error (exit 2).
  const guard =
    <A extends unknown[]>(f: (...args: A) => number) =>
    (...args: A): void => {
      const cmd = args[args.length - 1] as Command;
      try {
        status.code = f(...args);
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
    .option('--depth <d>', 'pct: bug depth', intOption(1, 64), 3)
    .option('--preemptions <p>', 'dfs: preemption bound', intOption(0, 3), 2)
    .option('--max-steps <n>', 'step limit per run', intOption(1, Number.MAX_SAFE_INTEGER), 100_000)
    .addOption(mutantOption())
    .addOption(setOption())
    .option('--json', 'print the report as JSON')
    .action(
      guard((scenario: string, o: Parsed<ExploreCommandOptions>) =>
        exploreCommand(io, scenario, withDefaults(o)),
      ),
    );

  program
    .command('replay')
    .description('replay a token from run or explore: the timeline, statistics and verdicts')
    .argument('<token>', 'replay token (odp1....)')
    .option('--trace <file>', 'write the trace as Chrome trace JSON (open in Perfetto)')
    .option('--log <file>', 'write the trace as a text log')
    .option('--json', 'print the report as JSON')
    .action(
      guard((token: string, o: ReplayCommandOptions & { json?: boolean }) =>
        replayCommand(io, token, { ...o, json: o.json === true }),
      ),
    );

  program
    .command('study')
    .description(
      'compare designs on one workload: "designs" runs the ODP designs (2014, interim, today\'s, and a linear list) at several MR counts',
    )
    .argument('<study>', 'what to compare: designs')
    .option('--mrs <counts>', 'MR counts, comma separated (1 to 100000 each)', '1,100,10000')
    .option('--json', 'print the rows as JSON')
    .action(
      guard((what: string, o: { mrs: string; json?: boolean }) =>
        studyCommand(io, what, { mrs: o.mrs, json: o.json === true }),
      ),
    );

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

function withDefaults<T>(o: Parsed<T>): T {
  return { ...o, set: o.set ?? {}, mutant: o.mutant ?? [], json: o.json === true } as T;
}

/**
 * Runs `odpsim` with the arguments after the program name; returns the exit status
 * (see {@link EXIT}).
 */
export function main(argv: readonly string[], io: Io): number {
  const status = { code: EXIT.ok as number };
  const program = buildProgram(io, status);
  try {
    program.parse([...argv], { from: 'user' });
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
