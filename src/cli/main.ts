#!/usr/bin/env node
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { baselineCommand } from './baseline.js';
import { faultTestCommand } from './fault_test.js';
import { reportError } from './report.js';
import { runCommand } from './run.js';
import { trainCommand } from './train.js';
import { validateCommand } from './validate.js';
import { workerCommand } from './worker.js';
import { serverCommand } from './server.js';
import { configCommand } from './config.js';
import { launchCommand } from './launch.js';
import { dashboardCommand } from './dashboard.js';
import { coordinatorCommand } from './coordinator.js';
import { computeNodeCommand } from './compute_node.js';
import { submitCommand } from './submit.js';
import { federatedCommand } from './federated.js';
import { infoCommand } from './info.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('smolcluster')
  .description('Distributed neural-network training for the machines you own.')
  .version(pkg.version)
  .option('--verbose', 'print stack traces with errors')
  .showHelpAfterError()
  .addCommand(trainCommand())
  .addCommand(workerCommand())
  .addCommand(runCommand())
  .addCommand(validateCommand())
  .addCommand(baselineCommand())
  .addCommand(faultTestCommand())
  .addCommand(serverCommand())
  .addCommand(configCommand())
  .addCommand(launchCommand())
  .addCommand(dashboardCommand())
  .addCommand(coordinatorCommand())
  .addCommand(computeNodeCommand())
  .addCommand(submitCommand())
  .addCommand(federatedCommand())
  .addCommand(infoCommand());

program.hook('preAction', (cmd) => {
  if (cmd.opts().verbose) process.env.SMOLCLUSTER_VERBOSE = '1';
});

program.parseAsync(process.argv).catch((e: unknown) => {
  process.exitCode = reportError(e);
});
