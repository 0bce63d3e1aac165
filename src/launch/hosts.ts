/**
 * hosts.yaml: which machines `smolcluster launch` starts, and how to reach them (docs/LAUNCH.md).
 *
 *   project_dir: ~/smolcluster     # the project, built, on every host
 *   strategy: ps                   # ps | async-ps | allreduce
 *   master_port: 29500             # rendezvous port on the server (rank 0)
 *   nn: examples/nn_config.yaml    # optional, a path inside project_dir on the hosts
 *   args: ["--max-steps", "500"]   # optional, more flags for every process
 *   ssh_options: ["-p", "22"]      # optional, for every host
 *   hosts:
 *     - { name: mini1, ssh: me@mini1.local, role: server, address: 10.10.0.1 }
 *     - { name: mini2, ssh: me@mini2.local, role: worker, address: 10.10.0.2 }
 *
 * `address` is the host's data address (e.g. its Thunderbolt IP) when it differs from what ssh
 * dials; the server's is the master address every worker dials.
 */
import { z } from 'zod';
import { ConfigError } from '../util/errors.js';
import { readYaml } from '../config/load.js';

const hostSchema = z.object({
  name: z.string().regex(/^[\w.-]+$/, 'expected a host name of letters, digits, . _ -'),
  ssh: z.string().min(1).refine((d) => !d.startsWith('-'), 'an ssh destination may not start with "-"'),
  role: z.enum(['server', 'worker']).default('worker'),
  address: z.string().min(1).optional(),
  ssh_options: z.array(z.string()).optional(),
  iface: z.string().optional(),
  node: z.string().optional(),
}).strict();

export const hostsFileSchema = z.object({
  project_dir: z.string().min(1),
  strategy: z.enum(['ps', 'async-ps', 'allreduce']).default('ps'),
  master_port: z.number().int().min(1).max(65535).default(29500),
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
  role: 'server' | 'worker';
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
}

export function loadHostsFile(file: string): LaunchPlan {
  const r = hostsFileSchema.safeParse(readYaml(file));
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = [...issue.path.map(String), ...(issue.code === 'unrecognized_keys' ? [issue.keys[0]] : [])].join('.');
    throw new ConfigError(file, path, issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message.replace(/^Expected/, 'expected').replace(/^Required$/, 'missing'));
  }
  return planLaunch(file, r.data);
}

export function planLaunch(file: string, spec: HostsFile): LaunchPlan {
  const names = new Set<string>();
  spec.hosts.forEach((h, i) => {
    if (names.has(h.name)) throw new ConfigError(file, `hosts.${i}.name`, `"${h.name}" is listed twice`);
    names.add(h.name);
  });
  const servers = spec.hosts.filter((h) => h.role === 'server');
  const workers = spec.hosts.filter((h) => h.role === 'worker');
  const ps = spec.strategy !== 'allreduce';
  if (ps && servers.length !== 1) throw new ConfigError(file, 'hosts', `${spec.strategy} needs exactly one host with role: server, found ${servers.length}`);
  if (!ps && servers.length > 0) throw new ConfigError(file, 'hosts', 'allreduce has no server: give every host role: worker');
  if (workers.length === 0) throw new ConfigError(file, 'hosts', 'no host with role: worker');
  const ordered = ps ? [servers[0], ...workers] : workers;
  const first = ordered[0];
  const processes = ordered.map((host, rank): Placement => {
    const role = ps && rank === 0 ? 'server' : 'worker';
    const base = role === 'server' ? 'server' : `worker${rank}`;
    const session = spec.session_prefix ? `${spec.session_prefix}-${base}` : base;
    return { host, rank, role, session, log: `${spec.log_dir.replace(/\/$/, '')}/${session}.log` };
  });
  return { file, spec, worldSize: ordered.length, masterHost: first.address ?? sshHostPart(first.ssh), masterPort: spec.master_port, processes };
}

/** The host part of an ssh destination (user@host → host). */
export function sshHostPart(dest: string): string {
  return dest.includes('@') ? dest.slice(dest.lastIndexOf('@') + 1) : dest;
}
