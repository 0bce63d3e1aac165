/** Options of how the model is trained: steps, batches, the optimizer and its schedule. */
import { OPTIMIZERS, SCHEDULES } from './choices.js';
import { nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from './parsers.js';
import { choice, toggle, valued } from './spec.js';

export const OPTIMIZATION_OPTIONS = {
  epochs: valued({ arg: '<n>', help: 'passes over the training set (default: mlp 2, cnn 1, others 1)', parse: positiveInt, forward: true, config: true, yaml: [{ file: 'nn', key: 'num_epochs' }] }),
  batchSize: valued({ arg: '<n>', help: 'samples per step per worker (default 32; transformers 16)', parse: positiveInt, forward: true, config: true, yaml: [{ file: 'nn', key: 'batch_size' }] }),
  // Not `config`: a single micro-batch leaves the config's gradAccum unset (configFrom).
  gradAccum: valued({ arg: '<k>', help: 'accumulate gradients over K micro-batches of --batch-size per optimizer step (default 1)', parse: positiveInt, forward: true, yaml: [{ file: 'nn', key: 'grad_accum' }] }),
  lr: valued({ arg: '<rate>', help: 'learning rate (default 0.02; resnet 0.05, transformers 0.001; 0 moves nothing, as in torch)', parse: nonNegativeNumber, forward: true, config: true, yaml: [{ file: 'nn', key: 'learning_rate' }] }),
  // nn_config.yaml means SmolCluster's training unless it says otherwise: Adam at a constant
  // learning rate (its `learning_rate` was chosen for that), not our SGD + cosine.
  // Not `config`: DiLoCo's inner optimizer defaults to AdamW (configFrom).
  optimizer: choice(OPTIMIZERS, {
    arg: '<name>', help: 'optimizer (default sgd; transformers adamw)', parse: oneOf(OPTIMIZERS), forward: true,
    yaml: [{ file: 'nn', key: 'optimizer', read: (v) => (v as (typeof OPTIMIZERS)[number] | undefined) ?? 'adam' }],
  }),
  momentum: valued({ arg: '<m>', help: 'SGD momentum (default 0.9)', parse: nonNegativeNumber, forward: true, config: true, yaml: [{ file: 'nn', key: 'momentum' }] }),
  weightDecay: valued({ arg: '<wd>', help: 'weight decay (L2 for sgd/adam, decoupled for adamw; default 0)', parse: nonNegativeNumber, forward: true, config: true, yaml: [{ file: 'nn', key: 'weight_decay' }] }),
  schedule: choice(SCHEDULES, {
    arg: '<name>', help: 'LR schedule (default cosine)', parse: oneOf(SCHEDULES), forward: true, config: true,
    yaml: [{ file: 'nn', key: 'schedule', read: (v) => (v as (typeof SCHEDULES)[number] | undefined) ?? 'constant' }],
  }),
  warmupSteps: valued({ arg: '<n>', help: 'linear LR warm-up steps (constant, cosine, linear and wsd schedules; default 0)', parse: nonNegativeInt, forward: true, config: true }),
  minLr: valued({ arg: '<rate>', help: 'the LR cosine, linear and wsd decay to (default 0)', parse: nonNegativeNumber, forward: true, config: true }),
  decaySteps: valued({ arg: '<n>', help: 'wsd: the decay phase, the run\'s last N steps (default a fifth of the run)', parse: positiveInt, forward: true, config: true }),
  clipGradNorm: valued({
    arg: '<max>', help: 'clip gradients to this global L2 norm (default off; transformers 1)', parse: positiveNumber, forward: true, config: true,
    yaml: [{ file: 'nn', key: 'gradient_clipping', read: (v) => {
      const g = v as { enabled?: boolean; max_norm?: number } | undefined;
      return g?.enabled ? g.max_norm : undefined;
    } }],
  }),
  seed: valued({
    arg: '<n>', help: 'seed for initialisation, shuffling and sharding', parse: nonNegativeInt, default: 0, forward: true, config: true,
    yaml: [{ file: 'cluster', key: 'seed' }, { file: 'nn', key: 'seed' }],
  }),
  evalBatchSize: valued({ arg: '<n>', help: 'sequences or images per evaluation batch (default 1000; token tasks capped so the logits stay near 64 MB): what evaluation holds at once', parse: positiveInt, forward: true, config: true }),
  evalEvery: valued({ arg: '<steps>', help: 'evaluate on the test set every N steps (0: at the end only)', parse: nonNegativeInt, default: 0, forward: true, config: true, yaml: [{ file: 'nn', key: 'eval_steps' }] }),
  maxSteps: valued({ arg: '<n>', help: 'the run\'s length in steps, over --epochs: the data cycles as long as it takes (the HF Trainer\'s max_steps; 0: --epochs)', parse: nonNegativeInt, default: 0, forward: true, config: true, yaml: [{ file: 'nn', key: 'max_steps' }] }),
  activationCheckpointing: toggle({
    help: 'keep only each layer\'s input in the forward and recompute its activations in the backward (GPT-2, BERT, the Llama family): less memory, about one more forward per step, the same gradients bit for bit',
    forward: true, config: true,
  }),
  trackGradients: toggle({ help: 'record per-layer and global gradient norms every step (metrics.jsonl)', forward: true, config: true, yaml: [{ file: 'nn', key: 'track_gradients' }] }),
} as const;
