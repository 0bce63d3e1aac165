/**
 * The training commands' flags (`train`, `worker`, `server`, `store`), from the option tables
 * (src/config/options/): each flag is declared there once, with its help, YAML keys and whether
 * workers get it.
 */
import type { Command } from 'commander';
import { DASHBOARD_OPTIONS, SINK_OPTIONS, TRAIN_OPTIONS } from '../config/options/index.js';
import { addOptions } from './option_table.js';

// The flag values' shape and what follows from them live below the commands, where the launcher reads them too.
export { type TrainFlags, configFrom } from '../launch/worker_flags.js';
export { backendFlag, datasetFlag, modelFlag } from '../config/options/parsers.js';
export { checkpointOptions, tensorBackend } from '../launch/worker_flags.js';

export function addTrainFlags(cmd: Command): Command {
  return addOptions(cmd, TRAIN_OPTIONS);
}

/** Where a run's records also go (train and worker; the launcher passes them on to its workers). */
export function addSinkFlags(cmd: Command): Command {
  return addOptions(cmd, SINK_OPTIONS);
}

/** `train --dashboard [--port N] [--dashboard-host H]` (not on every command: `server` has its own --port). */
export function addDashboardFlags(cmd: Command): Command {
  return addOptions(cmd, DASHBOARD_OPTIONS);
}
