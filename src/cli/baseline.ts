import { Command } from 'commander';
import {
  DEFAULT_BASELINE_DIR, compareToBaseline, formatComparison, loadBaseline, makeBaseline, saveBaseline,
} from '../validate/baseline.js';
import { writeJson } from '../validate/files.js';
import { readRunFile } from '../validate/run_file.js';
import { nonNegativeNumber } from './options.js';
import { EXIT, withInputExit } from './validate.js';

interface SaveFlags {
  metrics: string;
  name: string;
  baselineDir: string;
}

interface CompareFlags extends SaveFlags {
  latencyThreshold: number;
  throughputThreshold: number;
  lossThreshold?: number;
  output?: string;
}

/** What differs between `smolcluster baseline` and `minicluster baseline` (MiniCluster's own defaults). */
export interface BaselineDefaults {
  baselineDir: string;
  /** The command users are told to run to save a missing baseline. */
  program: string;
  /** Loss metrics checked against the latency threshold unless --loss-threshold says otherwise (MiniCluster checks them). */
  lossFollowsLatency: boolean;
}

/** MiniCluster's thresholds when none is given: 5% (its cli.py). */
export const DEFAULT_THRESHOLD_PCT = 5;

export function baselineCommand(d: BaselineDefaults = { baselineDir: DEFAULT_BASELINE_DIR, program: 'smolcluster', lossFollowsLatency: false }): Command {
  const save = new Command('save')
    .description('save a run\'s latency, throughput and loss as the baseline NAME')
    .requiredOption('--metrics <file>', 'run.json of the run (smolcluster run --output)')
    .requiredOption('--name <name>', 'baseline name')
    .option('--baseline-dir <dir>', 'where baselines are kept', d.baselineDir);
  withInputExit(save, async (flags: SaveFlags) => {
    const run = readRunFile(flags.metrics);
    const file = saveBaseline(flags.baselineDir, makeBaseline(flags.name, flags.metrics, run));
    process.stdout.write(
      `baseline "${flags.name}" saved to ${file}: ${run.average_step_time_ms.toFixed(3)} ms/step, ` +
        `${run.average_throughput_samples_per_sec.toFixed(1)} samples/s, final loss ${run.final_loss.toPrecision(6)}\n`,
    );
    return EXIT.pass;
  });

  const compare = new Command('compare')
    .description('compare a run with the baseline NAME; exit 0 no regression, 1 regression, 2 error (missing baseline, unreadable file)')
    .requiredOption('--metrics <file>', 'run.json of the run to check')
    .requiredOption('--name <name>', 'baseline name')
    .option('--latency-threshold <percent>', 'regression when the mean step time or total all-reduce time is this many percent higher', nonNegativeNumber, DEFAULT_THRESHOLD_PCT)
    .option('--throughput-threshold <percent>', 'regression when throughput is this many percent lower', nonNegativeNumber, DEFAULT_THRESHOLD_PCT)
    .option('--loss-threshold <percent>', `regression when the final or average loss is this many percent higher (default: ${d.lossFollowsLatency ? 'the latency threshold' : 'not checked'})`, nonNegativeNumber)
    .option('--baseline-dir <dir>', 'where baselines are kept', d.baselineDir)
    .option('--output <file>', 'write the comparison as JSON (docs/VALIDATION.md) here');
  withInputExit(compare, async (flags: CompareFlags) => {
    const base = loadBaseline(flags.baselineDir, flags.name, d.program);
    const run = { file: flags.metrics, run: readRunFile(flags.metrics) };
    const c = compareToBaseline(base, run, {
      latency: flags.latencyThreshold, throughput: flags.throughputThreshold, loss: flags.lossThreshold ?? (d.lossFollowsLatency ? flags.latencyThreshold : undefined),
    });
    process.stdout.write(formatComparison(c));
    if (flags.output) writeJson(flags.output, c);
    return c.verdict === 'pass' ? EXIT.pass : EXIT.fail;
  });

  return new Command('baseline')
    .description('performance baselines: save a run\'s numbers, compare later runs against them')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.input))
    .addCommand(save)
    .addCommand(compare);
}
