/**
 * Schemas of SmolCluster's two configuration files, with the keys as SmolCluster documents them
 * (docs/CONFIG.md):
 *
 *   cluster_config.yaml — where the server is and how many workers join: `host_ip` (the server's
 *     bind address, or a map hostname → IP), `worker_connect_ip`, `port`, `num_workers`, `timeout`
 *     (the straggler deadline in seconds), `server` / `workers` (host names), plus the keys of
 *     SmolCluster's other cluster files (`worker_update_interval`, `use_quantization`,
 *     `staleness_bound`, `seed`, ...).
 *   nn_config.yaml — what to train: `batch_size`, `learning_rate`, `num_epochs`, `eval_steps`,
 *     `track_gradients`, `model {type, input_dim, hidden, out}`, `dataset {name}`, and the optional
 *     `gradient_clipping {enabled, max_norm}` and `polyak_alpha`. Training follows SmolCluster's own
 *     (Adam at a constant learning rate) unless `optimizer`/`schedule` (our additions) say otherwise.
 *
 * Unknown keys are refused (a typo must not silently fall back to a default).
 */
import { z } from 'zod';
import { MODEL_NAMES } from '../nn/models/names.js';
import { PRECISION_CHOICES } from './options/choices.js';
import { canonicalDataset, canonicalModel, closest } from './spellings.js';

/** A name check whose error adds the closest accepted name ("did you mean"). */
function knownName(canonical: (v: string) => string | null, names: readonly string[], expected: string) {
  return (value: string, ctx: z.RefinementCtx): void => {
    if (canonical(value) !== null) return;
    const guess = closest(value, names);
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${expected}${guess ? `; did you mean ${guess}?` : ''}` });
  };
}

/** nn_config `dataset.name` values (case-insensitive), as the CLI's --dataset spells them. */
export const NN_DATASETS: readonly string[] = ['mnist', 'synthetic_image', 'synthetic_text', 'cifar10', 'text'];

const hostName = z.string().min(1, 'expected a non-empty host name');
const address = z.string().min(1, 'expected an IP address or host name');
const port = z.number().int().min(1).max(65535);

export const clusterConfigSchema = z.object({
  host_ip: z.union([address, z.record(hostName, address)]).optional(),
  worker_connect_ip: address.optional(),
  port: z.union([port, z.object({ default: port }).catchall(port)]).optional(),
  num_workers: z.number().int().min(1),
  timeout: z.number().positive().optional(),
  server: hostName.optional(),
  workers: z.array(hostName).optional(),
  seed: z.number().int().min(0).optional(),
  // async-ps (SmolCluster's EDP / SyncPS files)
  worker_update_interval: z.number().int().min(1).optional(),
  use_quantization: z.boolean().optional(),
  staleness_bound: z.number().int().min(0).optional(),
  // smolcluster's own additions
  strategy: z.enum(['ps', 'async-ps', 'allreduce']).optional(),
  server_trains: z.boolean().optional(),
  ps_reply: z.enum(['weights', 'gradients']).optional(),
  device: z.enum(['cpu', 'gpu', 'auto']).optional(),
  pipeline_stages: z.number().int().min(1).optional(),
  micro_batches: z.number().int().min(1).optional(),
  pipeline_schedule: z.enum(['gpipe', '1f1b']).optional(),
  zero: z.union([z.literal(1), z.literal(2), z.literal(3)]).optional(),
  // accepted for compatibility with SmolCluster's files, not used here
  buffer_size: z.record(z.string(), z.number()).optional(),
  track_network_metrics: z.boolean().optional(),
  metrics_log_interval: z.number().int().optional(),
}).strict();

export type ClusterConfig = z.infer<typeof clusterConfigSchema>;

export const nnConfigSchema = z.object({
  batch_size: z.number().int().min(1),
  learning_rate: z.number().nonnegative(),
  num_epochs: z.number().int().min(1),
  eval_steps: z.number().int().min(0).optional(),
  track_gradients: z.boolean().optional(),
  polyak_alpha: z.number().min(0).max(1).optional(),
  gradient_clipping: z.object({ enabled: z.boolean(), max_norm: z.number().positive().optional() }).strict()
    .refine((g) => !g.enabled || g.max_norm !== undefined, { message: 'missing: enabled is true, so max_norm (the global L2 norm to clip to) is required', path: ['max_norm'] })
    .optional(),
  model: z.object({
    type: z.string().superRefine(knownName(canonicalModel, MODEL_NAMES, `expected SimpleNN or one of ${MODEL_NAMES.join(', ')} (case, - and _ do not matter)`)),
    layers: z.number().int().min(1).optional(),
    width: z.number().int().min(1).optional(),
    heads: z.number().int().min(1).optional(),
    context: z.number().int().min(1).optional(),
    dropout: z.number().min(0).lt(1).optional(),
    input_dim: z.number().int().min(1).optional(),
    hidden: z.union([z.number().int().min(1), z.array(z.number().int().min(1)).min(1)]).optional(),
    out: z.number().int().min(1).optional(),
  }).strict(),
  dataset: z.object({
    name: z.string().superRefine(knownName((n) => (NN_DATASETS.includes(canonicalDataset(n) ?? '') ? n : null), NN_DATASETS, `expected MNIST (SmolCluster's), or one of ${NN_DATASETS.slice(1).join(', ')} (case, - and _ do not matter)`)),
    // smolcluster's own additions (docs/DATA.md)
    data_dir: z.string().min(1).optional(),
    augment: z.boolean().optional(),
    data_file: z.string().min(1).optional(),
    tokenizer: z.string().min(1).optional(),
    val_file: z.string().min(1).optional(),
    val_fraction: z.number().gt(0).lt(1).optional(),
    text_field: z.string().min(1).optional(),
    chat: z.boolean().optional(),
    packing: z.boolean().optional(),
  }).strict(),
  // smolcluster's own additions
  // (without them the file means SmolCluster's own training: Adam at a constant learning rate)
  optimizer: z.enum(['sgd', 'adam', 'adamw']).optional(),
  schedule: z.enum(['constant', 'step', 'cosine', 'linear', 'wsd']).optional(),
  momentum: z.number().min(0).optional(),
  weight_decay: z.number().min(0).optional(),
  seed: z.number().int().min(0).optional(),
  max_steps: z.number().int().min(0).optional(),
  /** Micro-batches of batch_size per optimizer step (--grad-accum). */
  grad_accum: z.number().int().min(1).optional(),
  /** The compute precision (--precision; docs/PRECISION.md). */
  precision: z.enum(PRECISION_CHOICES).optional(),
}).strict();

export type NnConfig = z.infer<typeof nnConfigSchema>;

export type ConfigKind = 'cluster' | 'nn';
