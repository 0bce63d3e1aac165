import { SINK_OPTIONS, TRAIN_OPTIONS, type TrainFlags } from '../config/options/index.js';
import { optionsToArgv } from '../config/options/argv.js';

/**
 * The `worker` command line equivalent to parsed train flags (every worker runs the same config):
 * every forwarded training and sink option (config/options/), derived from the option tables.
 */
export function flagsToArgs(f: TrainFlags): string[] {
  return [...optionsToArgv(TRAIN_OPTIONS, f), ...optionsToArgv(SINK_OPTIONS, f)];
}
