/**
 * Runs the real command-line interface (dist/src/cli/main.js) as a child process — a helper for
 * the CLI tests, not a test file (its name matches none of node's test-file patterns).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Absolute path of the compiled CLI entry point. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** The `minicluster` binary's entry point. */
export const MINICLUSTER_CLI = fileURLToPath(new URL('../../src/cli/minicluster.js', import.meta.url));

export interface CliResult {
  /** Exit code (null when killed by a signal). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Extra environment variables (merged over this process's environment). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Kill the child after this many milliseconds (default 60 s). */
  timeoutMs?: number;
  /** The entry point to run (default: smolcluster's, CLI). */
  entry?: string;
}

/** Runs `node dist/src/cli/main.js ...args` and resolves with its exit status and output. */
export function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [opts.entry ?? CLI, ...args],
      {
        env: { ...process.env, ...opts.env },
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 16 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: NodeJS.Signals | null }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}

/** Collapses runs of whitespace (commander wraps help text to the terminal width). */
export function squash(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
