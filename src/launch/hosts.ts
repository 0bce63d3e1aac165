/**
 * hosts.yaml: which machines `smolcluster launch` starts, and how to reach them (docs/LAUNCH.md).
 *
 *   project_dir: ~/smolcluster     # the project, built, on every host
 *   strategy: ps                   # ps | async-ps | allreduce
 *   master_port: 29500             # rendezvous port on the server (rank 0; default: cluster's port, else 29500)
 *   num_workers: 2                 # optional: start the first N worker hosts (default: cluster's, else all)
 *   cluster: cluster_config.yaml   # optional, a path inside project_dir on the hosts (read here too)
 *   nn: examples/nn_config.yaml    # optional, a path inside project_dir on the hosts
 *   args: ["--max-steps", "500"]   # optional, more flags for every process
 *   ssh_options: ["-p", "22"]      # optional, for every host
 *   hosts:
 *     - { name: mini1, ssh: me@mini1.local, role: server, address: 10.10.0.1 }
 *     - { name: mini2, ssh: me@mini2.local, role: worker, address: 10.10.0.2, device: gpu }
 *
 * `address` is the host's data address (e.g. its Thunderbolt IP) when it differs from what ssh
 * dials; the server's is the master address every worker dials. `device` (cpu | gpu | auto) is
 * that host's worker's --device, after `args` (so it wins over a --device there).
 */
import { z } from 'zod';
import { ConfigError } from '../util/errors.js';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { loadClusterConfig, readYaml } from '../config/load.js';

const hostSchema = z.object({
  name: z.string().regex(/^[\w.-]+$/, 'expected a host name of letters, digits, . _ -'),
  ssh: z.string().min(1).refine((d) => !d.startsWith('-'), 'an ssh destination may not start with "-"'),
  role: z.enum(['server', 'worker']).default('worker'),
  address: z.string().min(1).optional(),
  ssh_options: z.array(z.string()).optional(),
  iface: z.string().optional(),
  node: z.string().optional(),
  /** Where this host's worker trains (its --device): one host a GPU worker, another a cpu worker. */
  device: z.enum(['cpu', 'gpu', 'auto']).optional(),
}).strict();

export const hostsFileSchema = z.object({
  project_dir: z.string().min(1),
  strategy: z.enum(['ps', 'async-ps', 'allreduce']).default('ps'),
  master_port: z.number().int().min(1).max(65535).optional(),
  num_workers: z.number().int().min(1).optional(),
  nn: z.string().optional(),
  cluster: z.string().optional(),
  args: z.array(z.string()).default([]),
  ssh_options: z.array(z.string()).default([]),
  node: z.string().default('node'),
  // "" gives SmolCluster's own session names: server, worker1, ...
  session_prefix: z.string().regex(/^[\w-]*$/).default('smolcluster'),
  tmux_socket: z.string().regex(/^[\w-]+$/).optional(),
  log_dir: z.string().default('~/.smolcluster/logs'),
  hosts: z.array(hostSchema).min(1),
}).strict();

export type HostsFile = z.infer<typeof hostsFileSchema>;
export type HostEntry = z.infer<typeof hostSchema>;

/** One process to start: a host, its rank and tmux session. */
export interface Placement {
  host: HostEntry;
  rank: number;
  /** store: an elastic run's rendezvous store in a process of its own (rank -1), started first. */
  role: 'server' | 'worker' | 'store';
  session: string;
  log: string;
}

export interface LaunchPlan {
  file: string;
  spec: HostsFile;
  worldSize: number;
  masterHost: string;
  masterPort: number;
  processes: Placement[];
  /** Where the port and the worker count came from (hosts.yaml, the cluster config, the default). */
  sources: { masterPort: string; workers: string };
}

/** The rendezvous port when neither hosts.yaml nor the cluster config gives one (torchrun's). */
export const DEFAULT_MASTER_PORT = 29500;

/** What the launcher takes from SmolCluster's cluster_config.yaml when hosts.yaml does not say. */
export interface ClusterDefaults {
  file: string;
  port?: number;
  numWorkers: number;
}

export function loadHostsFile(file: string): LaunchPlan {
  const r = hostsFileSchema.safeParse(readYaml(file));
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = [...issue.path.map(String), ...(issue.code === 'unrecognized_keys' ? [issue.keys[0]] : [])].join('.');
    throw new ConfigError(file, path, issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message.replace(/^Expected/, 'expected').replace(/^Required$/, 'missing'));
  }
  return planLaunch(file, r.data, r.data.cluster ? clusterDefaults(file, r.data.cluster) : undefined);
}

/**
 * The cluster config hosts.yaml names, read on this machine: next to hosts.yaml, else from the
 * current folder (the hosts read the same path inside project_dir).
 */
function clusterDefaults(hostsFile: string, path: string): ClusterDefaults {
  const candidates = isAbsolute(path) ? [path] : [join(dirname(hostsFile), path), resolve(path)];
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    throw new ConfigError(hostsFile, 'cluster', `${path} is not found next to ${hostsFile} nor in the current folder (the launcher reads num_workers and port from it)`);
  }
  const c = loadClusterConfig(file);
  const port = c.port === undefined ? undefined : typeof c.port === 'number' ? c.port : c.port.default;
  return { file, port, numWorkers: c.num_workers };
}

export function planLaunch(file: string, spec: HostsFile, cluster?: ClusterDefaults): LaunchPlan {
  const names = new Set<string>();
  spec.hosts.forEach((h, i) => {
    if (names.has(h.name)) throw new ConfigError(file, `hosts.${i}.name`, `"${h.name}" is listed twice`);
    names.add(h.name);
  });
  const servers = spec.hosts.filter((h) => h.role === 'server');
  const listed = spec.hosts.filter((h) => h.role === 'worker');
  const ps = spec.strategy !== 'allreduce';
  if (ps && servers.length !== 1) throw new ConfigError(file, 'hosts', `${spec.strategy} needs exactly one host with role: server, found ${servers.length}`);
  if (!ps && servers.length > 0) throw new ConfigError(file, 'hosts', 'allreduce has no server: give every host role: worker');
  if (listed.length === 0) throw new ConfigError(file, 'hosts', 'no host with role: worker');
  const wanted = spec.num_workers ?? cluster?.numWorkers ?? listed.length;
  const workersFrom = spec.num_workers !== undefined ? `${file} num_workers` : cluster ? `${cluster.file} num_workers` : `${file} hosts`;
  if (wanted > listed.length) {
    throw new ConfigError(file, 'hosts', `num_workers is ${wanted} (${workersFrom}) but only ${listed.length} host(s) have role: worker`);
  }
  const workers = listed.slice(0, wanted);
  const ordered = ps ? [servers[0], ...workers] : workers;
  const first = ordered[0];
  const place = (host: HostEntry, rank: number, role: Placement['role'], base: string): Placement => {
    const session = spec.session_prefix ? `${spec.session_prefix}-${base}` : base;
    return { host, rank, role, session, log: `${spec.log_dir.replace(/\/$/, '')}/${session}.log` };
  };
  const processes = ordered.map((host, rank): Placement => (ps && rank === 0 ? place(host, rank, 'server', 'server') : place(host, rank, 'worker', `worker${rank}`)));
  // --elastic: the store must outlive any worker, rank 0 included, so it runs beside them on the first host.
  if (!ps && spec.args.includes('--elastic')) processes.unshift(place(first, -1, 'store', 'store'));
  const masterPort = spec.master_port ?? cluster?.port ?? DEFAULT_MASTER_PORT;
  const portFrom = spec.master_port !== undefined ? `${file} master_port` : cluster?.port !== undefined ? `${cluster.file} port` : 'default';
  return {
    file, spec, worldSize: ordered.length, masterHost: first.address ?? sshHostPart(first.ssh), masterPort, processes,
    sources: { masterPort: portFrom, workers: workersFrom },
  };
}

/** The host part of an ssh destination (user@host → host). */
export function sshHostPart(dest: string): string {
  return dest.includes('@') ? dest.slice(dest.lastIndexOf('@') + 1) : dest;
}
