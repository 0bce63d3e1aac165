/**
 * What the two configuration files mean for a run, as command-line option values (camelCase, the
 * names commander gives the flags). The CLI applies them under the flags actually typed: a flag
 * always overrides the file.
 */
import { hostname } from 'node:os';
import { ConfigError } from '../util/errors.js';
import { canonicalDataset, canonicalModel } from './spellings.js';
import type { ClusterConfig, NnConfig } from './schema.js';

export type StrategyName = 'allreduce' | 'ps' | 'async-ps';

/**
 * Option values from nn_config.yaml. The file means SmolCluster's training unless it says otherwise:
 * Adam at a constant learning rate (its `learning_rate` was chosen for that), not our SGD + cosine.
 */
export function nnOptionValues(n: NnConfig): Record<string, unknown> {
  const v: Record<string, unknown> = {
    batchSize: n.batch_size,
    lr: n.learning_rate,
    epochs: n.num_epochs,
    model: canonicalModel(n.model.type) ?? n.model.type.toLowerCase(),
    dataset: canonicalDataset(n.dataset.name) ?? n.dataset.name.toLowerCase(),
  };
  if (n.dataset.data_dir !== undefined) v.dataDir = n.dataset.data_dir;
  if (n.dataset.augment !== undefined) v.augment = n.dataset.augment;
  if (n.dataset.data_file !== undefined) v.dataFile = n.dataset.data_file;
  if (n.dataset.tokenizer !== undefined) v.tokenizer = n.dataset.tokenizer;
  if (n.eval_steps !== undefined) v.evalEvery = n.eval_steps;
  if (n.track_gradients !== undefined) v.trackGradients = n.track_gradients;
  for (const k of ['layers', 'width', 'heads', 'context'] as const) if (n.model[k] !== undefined) v[k] = n.model[k];
  if (n.model.hidden !== undefined) v.hidden = Array.isArray(n.model.hidden) ? n.model.hidden : [n.model.hidden];
  if (n.gradient_clipping?.enabled) v.clipGradNorm = n.gradient_clipping.max_norm;
  v.optimizer = n.optimizer ?? 'adam';
  v.schedule = n.schedule ?? 'constant';
  if (n.momentum !== undefined) v.momentum = n.momentum;
  if (n.weight_decay !== undefined) v.weightDecay = n.weight_decay;
  if (n.seed !== undefined) v.seed = n.seed;
  if (n.max_steps !== undefined) v.maxSteps = n.max_steps;
  if (n.grad_accum !== undefined) v.gradAccum = n.grad_accum;
  return v;
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

/** Option values from cluster_config.yaml. */
export function clusterOptionValues(c: ClusterConfig): Record<string, unknown> {
  const plan = clusterPlan(c);
  const v: Record<string, unknown> = { strategy: plan.strategy, worldSize: plan.worldSize };
  if (c.timeout !== undefined) v.stragglerTimeout = c.timeout;
  // Under allreduce there is no straggler to leave behind: `timeout` bounds every peer wait.
  if (c.timeout !== undefined && plan.strategy === 'allreduce') v.timeout = c.timeout;
  if (c.seed !== undefined) v.seed = c.seed;
  if (c.worker_update_interval !== undefined) v.pushEvery = c.worker_update_interval;
  if (c.use_quantization !== undefined) v.quantize = c.use_quantization ? 'int8' : 'none';
  if (c.staleness_bound !== undefined) v.stalenessBound = c.staleness_bound;
  if (c.server_trains !== undefined) v.serverTrains = c.server_trains;
  if (c.ps_reply !== undefined) v.psReply = c.ps_reply;
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
