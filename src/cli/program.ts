/** The `smolcluster` program: its commands and global flags. main.ts runs it (from the bundle where one is current). */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { reportError } from './report.js';

/**
 * Every command, in help order, with the module that defines it. A command's module is imported only
 * when that command runs (or for help): a compute node need not load the dashboard, the datasets and
 * every model to start (four nodes starting at once on two cores spent seconds on that).
 */
const COMMANDS: ReadonlyArray<readonly [string, () => Promise<Command>]> = [
  ['train', async () => (await import('./train.js')).trainCommand()],
  ['worker', async () => (await import('./worker.js')).workerCommand()],
  ['run', async () => (await import('./run.js')).runCommand()],
  ['validate', async () => (await import('./validate.js')).validateCommand()],
  ['baseline', async () => (await import('./baseline.js')).baselineCommand()],
  ['fault-test', async () => (await import('./fault_test.js')).faultTestCommand()],
  ['server', async () => (await import('./server.js')).serverCommand()],
  ['store', async () => (await import('./store.js')).storeCommand()],
  ['config', async () => (await import('./config.js')).configCommand()],
  ['launch', async () => (await import('./launch.js')).launchCommand()],
  ['dashboard', async () => (await import('./dashboard.js')).dashboardCommand()],
  ['serve', async () => (await import('./serve.js')).serveCommand()],
  ['coordinator', async () => (await import('./coordinator.js')).coordinatorCommand()],
  ['compute-node', async () => (await import('./compute_node.js')).computeNodeCommand()],
  ['submit', async () => (await import('./submit.js')).submitCommand()],
  ['federated', async () => (await import('./federated.js')).federatedCommand()],
  ['generate', async () => (await import('./generate.js')).generateCommand()],
  ['chat', async () => (await import('./chat.js')).chatCommand()],
  ['eval', async () => (await import('./eval.js')).evalCommand()],
  ['grpo', async () => (await import('./grpo.js')).grpoCommand()],
  ['rollout-worker', async () => (await import('./rollout_worker.js')).rolloutWorkerCommand()],
  ['task-data', async () => (await import('./task_data.js')).taskDataCommand()],
  ['stage', async () => (await import('./stage.js')).stageCommand()],
  ['info', async () => (await import('./info.js')).infoCommand()],
  ['export', async () => (await import('./export.js')).exportCommand()],
  ['discover', async () => (await import('./discover.js')).discoverCommand()],
];

/** The command named on the command line (the first word that is not a global flag), if it is one of ours. */
function requestedCommand(argv: readonly string[]): string | undefined {
  const word = argv.slice(2).find((a) => !a.startsWith('-'));
  return COMMANDS.some(([name]) => name === word) ? word : undefined;
}

async function main(): Promise<void> {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  const program = new Command('smolcluster')
    .description('Distributed neural-network training for the machines you own.')
    .version(pkg.version)
    .option('--verbose', 'print stack traces with errors')
    .showHelpAfterError();
  // One command: load only it. Anything else (help, a typo, no command): all of them, for the listing.
  const wanted = requestedCommand(process.argv);
  for (const [name, load] of COMMANDS) if (!wanted || name === wanted) program.addCommand(await load());
  program.hook('preAction', (cmd) => {
    if (cmd.opts().verbose) process.env.SMOLCLUSTER_VERBOSE = '1';
  });
  await program.parseAsync(process.argv);
}

main().catch((e: unknown) => {
  process.exitCode = reportError(e);
});
