/**
 * Prints an error the way users should see it: one or two lines, no stack trace unless
 * --verbose (or SMOLCLUSTER_VERBOSE=1). Returns the process exit code.
 */
export function reportError(e: unknown, verbose = process.env.SMOLCLUSTER_VERBOSE === '1'): number {
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`smolcluster: error: ${err.message}\n`);
  if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}
