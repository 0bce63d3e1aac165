#!/usr/bin/env node
/**
 * `minicluster`: MiniCluster's commands, flags and defaults over smolcluster's machinery, so its
 * README's recipes run verbatim (docs/MINICLUSTER.md). The differences from `smolcluster` are
 * MiniCluster's: `run --batch-size` is the global batch, `--seed` defaults to 42, baselines live in
 * `.minicluster/baselines/` and are compared at 5% thresholds, loss included.
 */
import { Command } from 'commander';
import { SCENARIOS } from '../validate/fault_test.js';
import { baselineCommand } from './baseline.js';
import { faultTestCommand } from './fault_test.js';
import { miniclusterRunCommand } from './minicluster_run.js';
import { reportError } from './report.js';
import { validateCommand } from './validate.js';

/** MiniCluster's three faults (slow worker, gradient sync anomaly, worker timeout) as our scenarios. */
const MINICLUSTER_FAULTS = ['slow', 'corrupt-noise', 'hang'].filter((n) => SCENARIOS.some((s) => s.name === n));

const program = new Command('minicluster')
  .description('MiniCluster-compatible distributed training validation: run, validate, fault-test, baseline (smolcluster underneath)')
  .showHelpAfterError()
  .addCommand(miniclusterRunCommand())
  .addCommand(validateCommand())
  .addCommand(faultTestCommand({ steps: 20, scenarios: MINICLUSTER_FAULTS, tolerance: 0.01, output: './minicluster_results/fault_report.json' }))
  .addCommand(baselineCommand({ baselineDir: '.minicluster/baselines', program: 'minicluster', lossFollowsLatency: true }));

program.parseAsync(process.argv).catch((e: unknown) => {
  process.exitCode = reportError(e, undefined, 'minicluster');
});
