/**
 * What the cluster-job commands (coordinator, compute-node, submit, federated) share: the original's
 * positional forms beside our flags (a flag and a different positional value for the same thing is
 * an error), host:port addresses, and the printing of progress lines.
 */
import { resolveToken } from '../comm/token.js';
import type { JobUpdate } from '../cluster/messages.js';
import { ConfigError } from '../util/errors.js';

/** The flag's value, else the positional one (parsed), else the default; both and different → error. */
export function either<T>(flag: T | undefined, positional: string | undefined, name: string, parse: (s: string) => T, fallback?: T): T {
  let pos: T | undefined;
  if (positional !== undefined) {
    try {
      pos = parse(positional);
    } catch (err) {
      throw new ConfigError('command line', name, `positional value "${positional}": ${(err as Error).message}`);
    }
  }
  if (flag !== undefined && pos !== undefined && flag !== pos) throw new ConfigError('command line', name, `given twice with different values (${String(flag)} and ${positional})`);
  const v = flag ?? pos ?? fallback;
  if (v === undefined) throw new ConfigError('command line', name, `missing: pass ${name}`);
  return v;
}

export function parsePort(s: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n > 65535) throw new Error(`"${s}" is not a port number (0–65535)`);
  return n;
}

export function parseProbability(s: string): number {
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new Error(`"${s}" is not a probability in [0, 1]`);
  return n;
}

export function parseHostPort(s: string, name: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new ConfigError('command line', name, `"${s}" is not host:port`);
  return { host: m[1], port };
}

/** The cluster token from SMOLCLUSTER_TOKEN (every process of a job must have the same). */
export function clusterToken(): string {
  return resolveToken({});
}

/** One human line per job update, as `submit` and `federated` print them. */
export function describeUpdate(u: JobUpdate): string {
  switch (u.state) {
    case 'queued':
      return `job ${u.job} queued (${u.ahead} ahead)`;
    case 'started':
      return `job ${u.job} started`;
    case 'round': {
      const retried = u.tasks.filter((t) => t.attempts > 1).length;
      // Tasks from a coordinator older than the device field count as cpu ones.
      const onGpu = u.tasks.filter((t) => t.device === 'webgpu').length;
      const gpu = onGpu ? `, ${onGpu} of ${u.tasks.length} tasks on the GPU` : '';
      return `round ${u.round}: validation error ${u.validationError.toFixed(4)}, training error ${u.trainError.toFixed(4)}, ${u.ms.toFixed(0)} ms${retried ? `, ${retried} tasks retried` : ''}${gpu}`;
    }
    case 'done':
      return `final validation error: ${u.validationError.toFixed(4)} (${(u.ms / 1000).toFixed(2)} s)`;
    case 'failed':
      return `job ${u.job} failed: ${u.message}`;
  }
}

/** Resolves at the first SIGINT or SIGTERM (a long-running command's end). */
export function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
