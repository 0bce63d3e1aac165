import { Command, InvalidArgumentError } from 'commander';
import { writeJson } from '../validate/files.js';
import { QUICK_SCENARIOS, SCENARIOS, faultStepFor, formatFaultTest, runFaultTest } from '../validate/fault_test.js';
import { nonNegativeInt, nonNegativeNumber, positiveInt, positiveNumber } from './options.js';

interface FaultTestFlags {
  steps: number;
  workers: number;
  rank: number;
  faultStep?: number;
  timeout: number;
  slowMs: number;
  batchSize: number;
  only?: string[];
  quick?: boolean;
  experimentsDir: string;
  output?: string;
  tolerance?: number;
}

/** What differs between `smolcluster fault-test` and `minicluster fault-test` (MiniCluster's defaults). */
export interface FaultTestDefaults {
  steps: number;
  /** Scenarios run when neither --only nor --quick is given. */
  scenarios: readonly string[];
  output?: string;
  /** --tolerance's default (undefined: no fault-free reference run unless asked). */
  tolerance?: number;
}

const SMOLCLUSTER_DEFAULTS: FaultTestDefaults = { steps: 30, scenarios: SCENARIOS.map((s) => s.name) };

function scenarioList(value: string): string[] {
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  const known = SCENARIOS.map((s) => s.name);
  const bad = names.filter((n) => !known.includes(n));
  if (names.length === 0 || bad.length > 0) throw new InvalidArgumentError(`expected a comma-separated list of ${known.join(', ')}.`);
  return names;
}

export function faultTestCommand(d: FaultTestDefaults = SMOLCLUSTER_DEFAULTS): Command {
  return new Command('fault-test')
    .description('run real local clusters with real faults injected into one worker; report what the monitors detected (exit 0: every fault detected)')
    .option('--steps <n>', 'steps per run', positiveInt, d.steps)
    .option('--workers <n>', 'workers per cluster', positiveInt, 2)
    .option('--rank <n>', 'the faulty rank', nonNegativeInt, 1)
    .option('--fault-step <n>', 'step the fault starts at (default: a third of --steps)', nonNegativeInt)
    .option('--timeout <seconds>', 'peer deadline of each run (how long a hung worker takes to be named)', positiveNumber, 3)
    .option('--slow-ms <ms>', 'sleep per step of the slow worker', positiveNumber, 60)
    .option('--batch-size <n>', 'samples per step per worker', positiveInt, 16)
    .option('--only <list>', `scenarios to run (default: ${d.scenarios.join(', ')})`, scenarioList)
    .option('--quick', `one fault of each kind: ${QUICK_SCENARIOS.join(', ')}`)
    .option('--experiments-dir <dir>', 'where the runs\' folders and logs go', 'experiments/fault-test')
    .option('--tolerance <rel>', 'also run the workload fault-free and report where each faulty run\'s loss departs from it by more than this relative amount', nonNegativeNumber, d.tolerance)
    .option('--output <file>', 'write the report (docs/VALIDATION.md) here', d.output)
    .action(async (f: FaultTestFlags) => {
      if (f.rank >= f.workers) throw new InvalidArgumentError(`--rank ${f.rank} is not a rank of ${f.workers} workers`);
      const faultStep = f.faultStep ?? faultStepFor(f.steps);
      if (faultStep + 7 > f.steps) throw new InvalidArgumentError(`--steps ${f.steps} leaves too few steps after the fault at step ${faultStep} (need 7)`);
      const report = await runFaultTest({
        scenarios: f.only ?? (f.quick ? QUICK_SCENARIOS : d.scenarios), lossTolerance: f.tolerance,
        steps: f.steps, workers: f.workers, rank: f.rank, faultStep, timeoutSec: f.timeout, slowMs: f.slowMs, batchSize: f.batchSize,
        experimentsDir: f.experimentsDir, progress: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(formatFaultTest(report));
      if (f.output) writeJson(f.output, report);
      process.exitCode = report.summary.verdict === 'pass' ? 0 : 1;
    });
}
