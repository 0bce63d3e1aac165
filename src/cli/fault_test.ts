import { Command, InvalidArgumentError } from 'commander';
import { writeJson } from '../validate/files.js';
import { QUICK_SCENARIOS, SCENARIOS, faultStepFor, formatFaultTest, runFaultTest } from '../validate/fault_test.js';
import { nonNegativeInt, positiveInt, positiveNumber } from './options.js';

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
}

function scenarioList(value: string): string[] {
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  const known = SCENARIOS.map((s) => s.name);
  const bad = names.filter((n) => !known.includes(n));
  if (names.length === 0 || bad.length > 0) throw new InvalidArgumentError(`expected a comma-separated list of ${known.join(', ')}.`);
  return names;
}

export function faultTestCommand(): Command {
  return new Command('fault-test')
    .description('run real local clusters with real faults injected into one worker; report what the monitors detected (exit 0: every fault detected)')
    .option('--steps <n>', 'steps per run', positiveInt, 30)
    .option('--workers <n>', 'workers per cluster', positiveInt, 2)
    .option('--rank <n>', 'the faulty rank', nonNegativeInt, 1)
    .option('--fault-step <n>', 'step the fault starts at (default: a third of --steps)', nonNegativeInt)
    .option('--timeout <seconds>', 'peer deadline of each run (how long a hung worker takes to be named)', positiveNumber, 3)
    .option('--slow-ms <ms>', 'sleep per step of the slow worker', positiveNumber, 60)
    .option('--batch-size <n>', 'samples per step per worker', positiveInt, 16)
    .option('--only <list>', `scenarios to run (default: all: ${SCENARIOS.map((s) => s.name).join(', ')})`, scenarioList)
    .option('--quick', `one fault of each kind: ${QUICK_SCENARIOS.join(', ')}`)
    .option('--experiments-dir <dir>', 'where the runs\' folders and logs go', 'experiments/fault-test')
    .option('--output <file>', 'write the report (docs/VALIDATION.md) here')
    .action(async (f: FaultTestFlags) => {
      if (f.rank >= f.workers) throw new InvalidArgumentError(`--rank ${f.rank} is not a rank of ${f.workers} workers`);
      const faultStep = f.faultStep ?? faultStepFor(f.steps);
      if (faultStep + 7 > f.steps) throw new InvalidArgumentError(`--steps ${f.steps} leaves too few steps after the fault at step ${faultStep} (need 7)`);
      const report = await runFaultTest({
        scenarios: f.only ?? (f.quick ? QUICK_SCENARIOS : SCENARIOS.map((s) => s.name)),
        steps: f.steps, workers: f.workers, rank: f.rank, faultStep, timeoutSec: f.timeout, slowMs: f.slowMs, batchSize: f.batchSize,
        experimentsDir: f.experimentsDir, progress: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(formatFaultTest(report));
      if (f.output) writeJson(f.output, report);
      process.exitCode = report.summary.verdict === 'pass' ? 0 : 1;
    });
}
