/**
 * What the two configuration files mean for a run, as command-line option values (camelCase, the
 * names commander gives the flags). Each training option's YAML keys are in its entry of the option
 * tables (options/). The CLI applies them under the flags actually typed: a flag always overrides
 * the file.
 */
import { hostname } from 'node:os';
import { ConfigError } from '../util/errors.js';
import { TRAIN_OPTIONS } from './options/index.js';
import { yamlOptionValues } from './options/yaml.js';
import type { ClusterConfig, NnConfig } from './schema.js';

export type StrategyName = 'allreduce' | 'ps' | 'async-ps';

/**
 * Option values from nn_config.yaml, through the option table's `yaml` sources (options/). The file
 * means SmolCluster's training unless it says otherwise: Adam at a constant learning rate (its
 * `learning_rate` was chosen for that), not our SGD + cosine.
 */
export function nnOptionValues(n: NnConfig): Record<string, unknown> {
  return yamlOptionValues(TRAIN_OPTIONS, 'nn', n);
}

/** cluster_config.yaml keys that say where the processes are: unused when `train` runs them all here. */
export function addressKeys(c: ClusterConfig): string[] {
  return (['host_ip', 'worker_connect_ip', 'port', 'server', 'workers'] as const).filter((k) => c[k] !== undefined);
}

/** The cluster's shape and addresses, from cluster_config.yaml. */
export interface ClusterPlan {
  strategy: StrategyName;
  /** Processes: the server (for ps / async-ps) and the workers. */
  worldSize: number;
  /** Address and port every process dials for the rendezvous (the server's, or rank 0's). */
  masterHost?: string;
  port?: number;
  /** Address the server binds (host_ip as a string, e.g. 0.0.0.0). */
  bindHost?: string;
  /** host name → address, when host_ip is a map. */
  addresses: Record<string, string>;
  server?: string;
  workers: string[];
}

export function clusterPlan(c: ClusterConfig): ClusterPlan {
  const strategy = c.strategy ?? 'ps';
  const addresses = typeof c.host_ip === 'object' ? c.host_ip : {};
  const bindHost = typeof c.host_ip === 'string' ? c.host_ip : undefined;
  const masterHost = c.worker_connect_ip ?? (c.server ? addresses[c.server] : undefined) ?? (bindHost && !isWildcard(bindHost) ? bindHost : undefined);
  const port = typeof c.port === 'object' ? (c.server && c.port[c.server]) || c.port.default : c.port;
  return {
    strategy,
    worldSize: strategy === 'allreduce' ? c.num_workers : c.num_workers + 1,
    masterHost, port, bindHost, addresses, server: c.server, workers: c.workers ?? [],
  };
}

/** Option values from cluster_config.yaml: the training options it sets (options/), and where the processes are. */
export function clusterOptionValues(c: ClusterConfig): Record<string, unknown> {
  const plan = clusterPlan(c);
  const v: Record<string, unknown> = { ...yamlOptionValues(TRAIN_OPTIONS, 'cluster', c), worldSize: plan.worldSize };
  if (plan.port) v.masterPort = plan.port;
  if (plan.masterHost && plan.port) v.master = `${plan.masterHost.includes(':') ? `[${plan.masterHost}]` : plan.masterHost}:${plan.port}`;
  return v;
}

/**
 * This host's rank from the host lists (server → 0, workers[i] → i + 1; allreduce: workers[i] → i),
 * or undefined when this host is not listed.
 */
export function rankFromHostLists(file: string, c: ClusterConfig, self = hostname()): number | undefined {
  const plan = clusterPlan(c);
  const short = self.split('.')[0];
  const is = (name: string): boolean => name === self || name === short;
  if (plan.strategy !== 'allreduce' && plan.server && is(plan.server)) {
    if (plan.workers.some(is)) throw new ConfigError(file, 'workers', `host "${self}" is both the server and a worker`);
    return 0;
  }
  const i = plan.workers.findIndex(is);
  if (i < 0) return undefined;
  return plan.strategy === 'allreduce' ? i : i + 1;
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}
