import { Command } from 'commander';
import {
  type Baseline, DEFAULT_BASELINE_DIR, type RunSample, compareToBaseline, formatComparison, loadBaseline, makeBaseline, saveBaseline,
} from '../validate/baseline.js';
import { relativeStdevPct } from '../validate/noise.js';
import { writeJson } from '../validate/files.js';
import { readRunFile } from '../validate/run_file.js';
import { nonNegativeNumber } from './options.js';
import { EXIT, withInputExit } from './validate.js';

interface SaveFlags {
  /** One run.json, or several runs of unchanged code (their spread is the noise). */
  metrics: string[];
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

function readRuns(files: readonly string[]): RunSample[] {
  return files.map((file) => ({ file, run: readRunFile(file) }));
}

/** "2.000 ms/step, 32000.0 samples/s, final loss 0.1" — with the spread when saved from repeats. */
function savedSummary(b: Baseline): string {
  const spread = b.spread?.average_step_time_ms;
  const repeats = spread && spread.n > 1 ? ` (${spread.n} runs; step time ${spread.min.toFixed(3)}–${spread.max.toFixed(3)} ms, ±${relativeStdevPct(spread)!.toFixed(1)}%)` : '';
  return `${b.metrics.average_step_time_ms.toFixed(3)} ms/step, ${b.metrics.average_throughput_samples_per_sec.toFixed(1)} samples/s, ` +
    `final loss ${b.metrics.final_loss.toPrecision(6)}${repeats}`;
}

export function baselineCommand(d: BaselineDefaults = { baselineDir: DEFAULT_BASELINE_DIR, program: 'smolcluster', lossFollowsLatency: false }): Command {
  const save = new Command('save')
    .description('save a run\'s latency, throughput and loss as the baseline NAME (from several runs: their means and spread)')
    .requiredOption('--metrics <files...>', 'run.json of the run (smolcluster run --output); several repeats measure the run-to-run noise')
    .requiredOption('--name <name>', 'baseline name')
    .option('--baseline-dir <dir>', 'where baselines are kept', d.baselineDir);
  withInputExit(save, async (flags: SaveFlags) => {
    const baseline = makeBaseline(flags.name, readRuns(flags.metrics));
    const file = saveBaseline(flags.baselineDir, baseline);
    process.stdout.write(`baseline "${flags.name}" saved to ${file}: ${savedSummary(baseline)}\n`);
    return EXIT.pass;
  });

  const compare = new Command('compare')
    .description('compare a run with the baseline NAME; exit 0 no regression, 1 regression, 2 error (missing baseline, unreadable file)')
    .requiredOption('--metrics <files...>', 'run.json of the run to check (several: repeats, compared by their mean)')
    .requiredOption('--name <name>', 'baseline name')
    .option('--latency-threshold <percent>', 'regression when the mean step time or total all-reduce time is this many percent higher', nonNegativeNumber, DEFAULT_THRESHOLD_PCT)
    .option('--throughput-threshold <percent>', 'regression when throughput is this many percent lower', nonNegativeNumber, DEFAULT_THRESHOLD_PCT)
    .option('--loss-threshold <percent>', `regression when the final or average loss is this many percent higher (default: ${d.lossFollowsLatency ? 'the latency threshold' : 'not checked'})`, nonNegativeNumber)
    .option('--baseline-dir <dir>', 'where baselines are kept', d.baselineDir)
    .option('--output <file>', 'write the comparison as JSON (docs/VALIDATION.md) here');
  withInputExit(compare, async (flags: CompareFlags) => {
    const base = loadBaseline(flags.baselineDir, flags.name, d.program);
    const c = compareToBaseline(base, readRuns(flags.metrics), {
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
