import { Command } from 'commander';
import { compareRuns, formatValidation } from '../validate/compare.js';
import { InputError, writeJson } from '../validate/files.js';
import { readRunFile } from '../validate/run_file.js';
import { nonNegativeNumber } from './options.js';
import { reportError } from './report.js';

/** Exit codes of validate and baseline: 0 pass, 1 fail or regression, 2 unusable input. */
export const EXIT = { pass: 0, fail: 1, input: 2 } as const;

/**
 * Runs a command body whose result is an exit code; an unusable input (InputError, or a usage
 * error from the parser) exits 2 with one line naming it.
 */
export function withInputExit(cmd: Command, body: (...args: never[]) => Promise<number>): Command {
  return cmd
    .exitOverride((err) => {
      // Help and version exit 0; every other parser error is unusable input.
      process.exit(err.exitCode === 0 ? 0 : EXIT.input);
    })
    .action(async (...args: unknown[]) => {
      try {
        process.exitCode = await body(...(args as never[]));
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        reportError(e);
        process.exitCode = EXIT.input;
      }
    });
}

interface ValidateFlags {
  tolerance: number;
  absTolerance: number;
  output?: string;
  verbose?: boolean;
}

export function validateCommand(): Command {
  const cmd = new Command('validate')
    .description('compare two runs step by step (e.g. 1 process at batch N·B vs N workers at batch B); exit 0 pass, 1 fail, 2 unusable input')
    .argument('<reference>', 'run.json of the reference run (e.g. single process)')
    .argument('<candidate>', 'run.json of the run to check (e.g. multi-worker)')
    .option('--tolerance <rel>', 'largest relative loss difference per step', nonNegativeNumber, 0.01)
    .option('--abs-tolerance <abs>', 'a step within this absolute difference passes regardless', nonNegativeNumber, 1e-6)
    .option('--output <file>', 'write the JSON report (docs/VALIDATION.md) here')
    .option('--verbose', 'list every step, not only the failing ones or a sample');
  return withInputExit(cmd, async (refFile: string, candFile: string, flags: ValidateFlags) => {
    const reference = { file: refFile, run: readRunFile(refFile) };
    const candidate = { file: candFile, run: readRunFile(candFile) };
    const report = compareRuns(reference, candidate, { tolerance: flags.tolerance, absTolerance: flags.absTolerance });
    process.stdout.write(formatValidation(report, flags.verbose ? Infinity : undefined));
    if (flags.output) writeJson(flags.output, report);
    return report.summary.verdict === 'pass' ? EXIT.pass : EXIT.fail;
  });
}
