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

/** The default rendezvous port, as torch.distributed's. */
export const DEFAULT_MASTER_PORT = 29500;
/** Slurm jobs without MASTER_PORT use SLURM_PORT_BASE + (SLURM_JOB_ID mod SLURM_PORT_SPAN): two jobs on a node differ. */
export const SLURM_PORT_BASE = 10_000;
export const SLURM_PORT_SPAN = 20_000;

/** Where each part of a placement came from (a flag or a variable), for the line a worker prints. */
export interface PlacementSources {
  rank: string;
  worldSize: string;
  masterHost: string;
  masterPort: string;
}

/**
 * Rank, world size and master address from the flags, else from torchrun's environment
 * (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), else Slurm's (SLURM_PROCID, SLURM_NTASKS) or
 * OpenMPI's (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE). Two launchers' variables that disagree
 * (an exported RANK=0 beside SLURM_PROCID=1) are refused, naming both. Under Slurm the master is
 * the first host of the step's node list (where task 0 runs; SLURM_LAUNCH_NODE_IPADDR without a
 * list) and the port comes from SLURM_JOB_ID; otherwise MASTER_PORT defaults to 29500. A missing
 * value is an error naming the sources.
 */
export function resolvePlacement(flags: PlacementFlags, env: NodeJS.ProcessEnv = process.env): Placement {
  return resolvePlacementWithSources(flags, env).placement;
}

export function resolvePlacementWithSources(flags: PlacementFlags, env: NodeJS.ProcessEnv = process.env): { placement: Placement; sources: PlacementSources } {
  const rank = flags.rank !== undefined ? { value: flags.rank, source: '--rank' } : agreeingIntFromEnv(env, RANK_VARS);
  const world = flags.worldSize !== undefined ? { value: flags.worldSize, source: '--world-size' } : agreeingIntFromEnv(env, WORLD_VARS);
  const master = masterFrom(flags, env);
  if (rank === undefined) throw new ConfigError('command line', '--rank', 'no rank: pass --rank or set RANK (or SLURM_PROCID, OMPI_COMM_WORLD_RANK)');
  if (world === undefined) throw new ConfigError('command line', '--world-size', 'no world size: pass --world-size or set WORLD_SIZE (or SLURM_NTASKS, OMPI_COMM_WORLD_SIZE)');
  if (!master.host || master.port === undefined) {
    throw new ConfigError('command line', '--master', 'no master address: pass --master host:port or set MASTER_ADDR and MASTER_PORT');
  }
  if (rank.value < 0 || rank.value >= world.value) throw new ConfigError('command line', '--rank', `rank ${rank.value} is outside [0, ${world.value})`);
  return {
    placement: { rank: rank.value, worldSize: world.value, masterHost: master.host, masterPort: master.port },
    sources: { rank: rank.source, worldSize: world.source, masterHost: master.hostSource, masterPort: master.portSource },
  };
}

/** One line saying which source won, e.g. "rank 1 of 2 (SLURM_PROCID, SLURM_NTASKS), master 10.0.0.1:10042 (SLURM_JOB_NODELIST, SLURM_JOB_ID)". */
export function describePlacement(p: Placement, s: PlacementSources): string {
  // One source of both values (--master host:port, a cluster file) is named once.
  const sources = (a: string, b: string): string => (a === b ? a : `${a}, ${b}`);
  return `rank ${p.rank} of ${p.worldSize} (${sources(s.rank, s.worldSize)}), master ${p.masterHost}:${p.masterPort} (${sources(s.masterHost, s.masterPort)})`;
}

/** Sources named by the flag that carried them, renamed where that flag's value came from elsewhere (a cluster file, the server command). */
export function renameFlagSources(s: PlacementSources, from: { rank?: string; worldSize?: string; master?: string }): PlacementSources {
  return {
    rank: s.rank === '--rank' && from.rank ? from.rank : s.rank,
    worldSize: s.worldSize === '--world-size' && from.worldSize ? from.worldSize : s.worldSize,
    masterHost: s.masterHost === '--master' && from.master ? from.master : s.masterHost,
    masterPort: s.masterPort === '--master' && from.master ? from.master : s.masterPort,
  };
}

function masterFrom(flags: PlacementFlags, env: NodeJS.ProcessEnv): { host?: string; port?: number; hostSource: string; portSource: string } {
  // --master replaces both variables, so they are only read (and checked) without it.
  if (flags.master) return { ...parseHostPort(flags.master), hostSource: '--master', portSource: '--master' };
  const port = portFromEnv(env, 'MASTER_PORT');
  const slurmPort = port === undefined ? slurmJobPort(env) : undefined;
  const portPart = port !== undefined ? { port, portSource: 'MASTER_PORT' }
    : slurmPort !== undefined ? { port: slurmPort, portSource: 'SLURM_JOB_ID' }
      : { port: DEFAULT_MASTER_PORT, portSource: 'default' };
  if (env.MASTER_ADDR) return { host: env.MASTER_ADDR, hostSource: 'MASTER_ADDR', ...portPart };
  for (const name of ['SLURM_STEP_NODELIST', 'SLURM_JOB_NODELIST'] as const) {
    const first = env[name] ? firstHostOf(env[name]!) : undefined;
    if (first) return { host: first, hostSource: name, ...portPart };
  }
  if (env.SLURM_LAUNCH_NODE_IPADDR) return { host: env.SLURM_LAUNCH_NODE_IPADDR, hostSource: 'SLURM_LAUNCH_NODE_IPADDR', ...portPart };
  return { hostSource: 'none', ...portPart };
}

function slurmJobPort(env: NodeJS.ProcessEnv): number | undefined {
  const job = intFromEnv(env, 'SLURM_JOB_ID');
  return job === undefined ? undefined : SLURM_PORT_BASE + (job % SLURM_PORT_SPAN);
}

/**
 * The first host of a Slurm host list: "node[07-09,12],gpu1" → "node07", "a,b" → "a",
 * "rack1-n[003-004]" → "rack1-n003" (zero padding kept).
 */
export function firstHostOf(list: string): string | undefined {
  const m = /^([^,[]*)(?:\[([^\]]*)\])?([^,]*)/.exec(list.trim());
  if (!m || (!m[1] && !m[2])) return undefined;
  const first = m[2] ? m[2].split(',')[0].split('-')[0] : '';
  return `${m[1]}${first}${m[3]}` || undefined;
}

/**
 * Compute threads the scheduler gave this task: SLURM_CPUS_PER_TASK, else the cores divided by
 * the tasks on this node (SLURM_NTASKS_PER_NODE, this node's entry of SLURM_STEP_TASKS_PER_NODE or
 * SLURM_TASKS_PER_NODE, OMPI_COMM_WORLD_LOCAL_SIZE, LOCAL_WORLD_SIZE). Undefined outside a scheduler.
 */
export function schedulerThreads(cores: number, env: NodeJS.ProcessEnv = process.env): { threads: number; source: string } | undefined {
  const perTask = intFromEnv(env, 'SLURM_CPUS_PER_TASK');
  if (perTask !== undefined && perTask > 0) return { threads: perTask, source: 'SLURM_CPUS_PER_TASK' };
  const local = localTasks(env);
  return local ? { threads: Math.max(1, Math.floor(cores / local.tasks)), source: `${cores} core${cores === 1 ? '' : 's'} ÷ ${local.tasks} local tasks (${local.source})` } : undefined;
}

function localTasks(env: NodeJS.ProcessEnv): { tasks: number; source: string } | undefined {
  const direct = firstIntWithName(env, ['SLURM_NTASKS_PER_NODE']);
  if (direct && direct.value > 0) return { tasks: direct.value, source: direct.source };
  for (const name of ['SLURM_STEP_TASKS_PER_NODE', 'SLURM_TASKS_PER_NODE']) {
    const v = env[name];
    if (!v) continue;
    const perNode = expandTasksPerNode(v);
    const node = intFromEnv(env, 'SLURM_NODEID') ?? 0;
    if (perNode?.[node]) return { tasks: perNode[node], source: name };
  }
  const other = firstIntWithName(env, ['OMPI_COMM_WORLD_LOCAL_SIZE', 'LOCAL_WORLD_SIZE']);
  return other && other.value > 0 ? { tasks: other.value, source: other.source } : undefined;
}

/** Slurm's "2(x3),1" → [2, 2, 2, 1]; undefined if malformed. */
export function expandTasksPerNode(v: string): number[] | undefined {
  const out: number[] = [];
  for (const part of v.split(',')) {
    const m = /^(\d+)(?:\(x(\d+)\))?$/.exec(part.trim());
    if (!m) return undefined;
    for (let i = 0; i < Number(m[2] ?? 1); i++) out.push(Number(m[1]));
  }
  return out;
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

/** The value every set variable of `names` agrees on (first one named as the source); disagreement is refused. */
function agreeingIntFromEnv(env: NodeJS.ProcessEnv, names: readonly string[]): { value: number; source: string } | undefined {
  const set = names.map((name) => ({ name, value: intFromEnv(env, name) })).filter((x) => x.value !== undefined) as { name: string; value: number }[];
  const other = set.find((x) => x.value !== set[0]?.value);
  if (other) {
    throw new ConfigError('environment', set[0].name,
      `${set[0].name}=${set[0].value} but ${other.name}=${other.value}: two launchers disagree (an exported ${set[0].name} reaches every task?); unset one, or pass the flag`);
  }
  return set[0] ? { value: set[0].value, source: set[0].name } : undefined;
}

function firstIntWithName(env: NodeJS.ProcessEnv, names: readonly string[]): { value: number; source: string } | undefined {
  for (const name of names) {
    const value = intFromEnv(env, name);
    if (value !== undefined) return { value, source: name };
  }
  return undefined;
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
