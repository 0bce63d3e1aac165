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
 * (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), else Slurm's (SLURM_PROCID, SLURM_NTASKS) or
 * OpenMPI's (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE). A missing value is an error naming the sources.
 */
export function resolvePlacement(flags: PlacementFlags, env: NodeJS.ProcessEnv = process.env): Placement {
  const rank = flags.rank ?? rankFromEnvironment(env);
  const worldSize = flags.worldSize ?? firstIntFromEnv(env, WORLD_VARS);
  // --master replaces both variables, so they are only read (and checked) without it.
  const { host: masterHost, port: masterPort } = flags.master
    ? parseHostPort(flags.master)
    : { host: env.MASTER_ADDR, port: portFromEnv(env, 'MASTER_PORT') };
  if (rank === undefined) throw new ConfigError('command line', '--rank', 'no rank: pass --rank or set RANK (or SLURM_PROCID, OMPI_COMM_WORLD_RANK)');
  if (worldSize === undefined) throw new ConfigError('command line', '--world-size', 'no world size: pass --world-size or set WORLD_SIZE (or SLURM_NTASKS, OMPI_COMM_WORLD_SIZE)');
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

const RANK_VARS = ['RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'] as const;
const WORLD_VARS = ['WORLD_SIZE', 'SLURM_NTASKS', 'OMPI_COMM_WORLD_SIZE'] as const;
const LOCAL_RANK_VARS = ['LOCAL_RANK', 'SLURM_LOCALID', 'OMPI_COMM_WORLD_LOCAL_RANK'] as const;

/** The rank a launcher (torchrun, Slurm, OpenMPI — in that order) set, if any. */
export function rankFromEnvironment(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return firstIntFromEnv(env, RANK_VARS);
}

/** The world size a launcher set, if any. */
export function worldSizeFromEnvironment(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return firstIntFromEnv(env, WORLD_VARS);
}

/** The rank among this host's processes (LOCAL_RANK, SLURM_LOCALID, OMPI_COMM_WORLD_LOCAL_RANK), if set. */
export function localRankFromEnvironment(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return firstIntFromEnv(env, LOCAL_RANK_VARS);
}

function firstIntFromEnv(env: NodeJS.ProcessEnv, names: readonly string[]): number | undefined {
  for (const name of names) {
    const v = intFromEnv(env, name);
    if (v !== undefined) return v;
  }
  return undefined;
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
