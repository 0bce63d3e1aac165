#!/usr/bin/env node
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { reportError } from './report.js';
import { trainCommand } from './train.js';
import { workerCommand } from './worker.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('smolcluster')
  .description('Distributed neural-network training for the machines you own.')
  .version(pkg.version)
  .option('--verbose', 'print stack traces with errors')
  .showHelpAfterError()
  .addCommand(trainCommand())
  .addCommand(workerCommand());

program.hook('preAction', (cmd) => {
  if (cmd.opts().verbose) process.env.SMOLCLUSTER_VERBOSE = '1';
});

program.parseAsync(process.argv).catch((e: unknown) => {
  process.exitCode = reportError(e);
});
