import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Child processes that report one JSON object on the last line of their stdout: how benchmarks
 * keep each engine (js, native, PyTorch) in its own process so one's JIT, allocator and thread-pool
 * state cannot colour another's figures.
 */
export interface JsonChildOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed (SIGKILL) after this long; the result then has `timedOut`. Default 5 minutes. */
  timeoutMs?: number;
  /** 'inherit' passes the child's stderr (its progress lines) straight through; 'pipe' collects it. */
  stderr?: 'inherit' | 'pipe';
}

export interface JsonChildResult<T> {
  /** The parsed last stdout line, when the child exited 0 and that line was JSON. */
  value: T | null;
  /** Why `value` is null, in one line. */
  error: string | null;
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  ms: number;
}

export function runJsonChild<T>(command: string, args: readonly string[], opts: JsonChildOptions = {}): Promise<JsonChildResult<T>> {
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(command, [...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', opts.stderr ?? 'inherit'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 300_000);
    const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
      clearTimeout(timer);
      const base = { code, signal, timedOut, stdout, stderr, ms: Date.now() - started };
      if (spawnError) return done({ ...base, value: null, error: `cannot start ${command}: ${spawnError.message}` });
      if (timedOut) return done({ ...base, value: null, error: `${command} timed out after ${opts.timeoutMs ?? 300_000} ms` });
      const parsed = parseLastJsonLine<T>(stdout);
      if (code !== 0) {
        const tail = lastLines(stderr || stdout, 3);
        return done({ ...base, value: parsed, error: `${command} exited with ${signal ?? code}${tail ? `: ${tail}` : ''}` });
      }
      if (parsed === null) return done({ ...base, value: null, error: `${command} printed no JSON last line` });
      done({ ...base, value: parsed, error: null });
    };
    child.on('error', (e) => finish(null, null, e));
    child.on('close', (code, signal) => finish(code, signal));
  });
}

/** The last non-empty line of `text` parsed as JSON, or null. */
export function parseLastJsonLine<T>(text: string): T | null {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines[lines.length - 1];
  if (!last || !last.startsWith('{')) return null;
  try {
    return JSON.parse(last) as T;
  } catch {
    return null;
  }
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ').slice(0, 500);
}

/**
 * Environment for a benchmark child pinned to `threads` compute threads: every pool we or a
 * library might start (OpenMP, OpenBLAS, MKL, oneDNN via OpenMP, our own) is sized explicitly.
 */
export function threadEnv(threads: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const n = String(threads);
  return {
    ...process.env,
    OMP_NUM_THREADS: n,
    OPENBLAS_NUM_THREADS: n,
    MKL_NUM_THREADS: n,
    SMOLCLUSTER_THREADS: n,
    ...extra,
  };
}

/** The package root (the nearest folder above `fromUrl` with a package.json), e.g. for bench/reference/. */
export function packageRoot(fromUrl: string): string {
  let dir = dirname(fileURLToPath(fromUrl));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = resolve(dir, '..');
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(fromUrl)}`);
    dir = up;
  }
}
