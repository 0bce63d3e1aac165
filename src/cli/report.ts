import { InterruptedError, interruptedExitCode } from '../train/run/interrupt.js';

/**
 * Prints an error the way users should see it: one or two lines, no stack trace unless
 * --verbose (or SMOLCLUSTER_VERBOSE=1), after the name of the program the user typed (`minicluster`
 * is smolcluster underneath, but its user never typed "smolcluster"). Returns the process exit code.
 */
export function reportError(e: unknown, verbose = process.env.SMOLCLUSTER_VERBOSE === '1', program = 'smolcluster'): number {
  // Stopped by the user, with its checkpoint saved: said as such, with the shell's exit status.
  if (e instanceof InterruptedError) {
    process.stderr.write(`${program}: ${e.message}\n`);
    return interruptedExitCode(e.signal);
  }
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`${program}: error: ${err.message}\n`);
  if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}
