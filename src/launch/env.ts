import { ConfigError } from '../util/errors.js';

/** Where this process sits in the cluster. */
export interface Placement {
  rank: number;
  worldSize: number;
  masterHost: string;
  masterPort: number;
}

export interface PlacementFlags {
  rank?: number;
  worldSize?: number;
  master?: string;
}

/**
 * Rank, world size and master address from the flags, else from torchrun's environment
 * (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). A missing value is an error naming both sources.
 */
export function resolvePlacement(flags: PlacementFlags, env: NodeJS.ProcessEnv = process.env): Placement {
  const rank = flags.rank ?? intFromEnv(env, 'RANK');
  const worldSize = flags.worldSize ?? intFromEnv(env, 'WORLD_SIZE');
  // --master replaces both variables, so they are only read (and checked) without it.
  const { host: masterHost, port: masterPort } = flags.master
    ? parseHostPort(flags.master)
    : { host: env.MASTER_ADDR, port: portFromEnv(env, 'MASTER_PORT') };
  if (rank === undefined) throw new ConfigError('command line', '--rank', 'no rank: pass --rank or set RANK');
  if (worldSize === undefined) throw new ConfigError('command line', '--world-size', 'no world size: pass --world-size or set WORLD_SIZE');
  if (!masterHost || masterPort === undefined) {
    throw new ConfigError('command line', '--master', 'no master address: pass --master host:port or set MASTER_ADDR and MASTER_PORT');
  }
  if (rank < 0 || rank >= worldSize) throw new ConfigError('command line', '--rank', `rank ${rank} is outside [0, ${worldSize})`);
  return { rank, worldSize, masterHost, masterPort };
}

export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new ConfigError('command line', '--master', `"${s}" is not host:port`);
  return { host: m[1], port };
}

function portFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const port = intFromEnv(env, name);
  if (port !== undefined && (port < 1 || port > 65535)) throw new ConfigError('environment', name, `expected a port in 1..65535, got "${env[name]}"`);
  return port;
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError('environment', name, `expected a non-negative integer, got "${v}"`);
  return n;
}
