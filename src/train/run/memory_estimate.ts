/**
 * A fine-tuning run's peak memory per process, estimated before anything is loaded: the base's
 * weights as they will be held (a GGUF file's blocks, a scheme's formats, float32), what trains
 * (value, gradient and optimizer state of every trained parameter: the adapters under LoRA), the
 * activations a step keeps (each layer's input under activation checkpointing, and one layer's
 * working set; every layer's without), the logits with their softmax and gradient, and the
 * runtime (Node, the addon, the modules). A float folder quantized at load (--lora-base-dtype
 * SCHEME) first holds it in float32: the peak is the larger of loading and training.
 *
 * The per-token figures are the engine's, measured (a checkpointed layer of the Llama-3.1-8B shape
 * at 512 tokens took 384 MB of scratch, the step's own buffers 275 MB), and SLACK is calibrated on
 * bench/qlora_memory.ts; the estimate is meant to refuse a run that cannot fit, not to replace the
 * measurement.
 */
import { availableMemory } from '../../generate/weight_report.js';
import { ggufHeaderRead } from '../../nn/interchange/gguf.js';
import { ggufSources } from '../../nn/interchange/gguf_llama.js';
import { readHfConfig } from '../../nn/interchange/hf_folder.js';
import { mlxQuantizationOf } from '../../nn/interchange/mlx_folder.js';
import type { LlamaSpec, ModelSpec } from '../../nn/models/index.js';
import { createModel } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { isAdapterParameter } from '../../nn/lora/names.js';
import { isQuantScheme, quantizationPlan } from '../../nn/quantize_model.js';
import { buildDeferred } from '../../tensor/deferred_init.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import { type QuantType, quantBytes } from '../../tensor/quant/formats.js';
import { ConfigError } from '../../util/errors.js';
import { prepareFineTune } from '../loop/fine_tune.js';
import type { TrainConfig } from './config.js';
import { initIsFolder, initIsGguf, initIsQuantized } from './init_source.js';

/** Node, the addon and our modules before any weight (measured: ~70 MB), with the allocator's slack. */
const RUNTIME_BYTES = 200 * 2 ** 20;
/**
 * What a step holds beyond the parts counted, as a share of them (the allocator's free lists, the
 * autograd's transient gradients, the optimizer's scratch): bench:qlora-memory's Llama-3.1-8B
 * shape (Q4_0, r = 16, 512 tokens, checkpointing) peaked 2.61 GiB over its base where the parts
 * summed to 2.16 GiB.
 */
const SLACK = 0.25;
/** Optimizer state per trained value: AdamW's two moments, SGD's momentum. */
const STATE_BYTES: Readonly<Record<string, number>> = { adamw: 8, adam: 8, sgd: 4 };

export interface TrainingMemory {
  /** The frozen (or trained) base as held while training. */
  weights: number;
  /** Values, gradients and optimizer state of what trains. */
  trained: number;
  activations: number;
  logits: number;
  runtime: number;
  /** SLACK of the trained state, activations and logits. */
  slack: number;
  /** Loading a float folder before quantizing it: float32 of every parameter (0 otherwise). */
  loading: number;
  /** The larger of loading and training. */
  total: number;
  /** The base's formats, for the line that reports it (e.g. "q4_0 + q6_k"). */
  formats: string;
}

type EstimateConfig = Pick<TrainConfig, 'init' | 'loraRank' | 'loraAlpha' | 'loraDropout' | 'loraTargets' | 'loraBaseDtype' | 'adapter' | 'freeze' | 'mergeLora' | 'seed' | 'optimizer' | 'batchSize' | 'activationCheckpointing'>;

/** The estimate for a run of `config` over the model `spec` describes, at `window` tokens a sample. */
export function estimateTrainingMemory(config: EstimateConfig, spec: ModelSpec, window: number): TrainingMemory | null {
  if (spec.type !== 'llama' && spec.type !== 'gpt2') return null;
  // Built deferred and without random fills: nothing is held, every shape is known.
  const model = buildDeferred(() => {
    const m = withoutRandomInit(() => createModel(spec, 0));
    prepareFineTune(m, spec, config);
    return m;
  });
  const held = heldBytes(model, spec, config);
  const trainedValues = model.namedTrainable().reduce((n, [, p]) => n + p.size, 0);
  const trained = trainedValues * (8 + (STATE_BYTES[config.optimizer] ?? 8));
  const tokens = config.batchSize * window;
  const activations = activationBytes(spec, tokens, window, config.activationCheckpointing === true);
  // Logits, their log-softmax and their gradient, float32.
  const logits = 3 * 4 * tokens * spec.vocabSize;
  const slack = SLACK * (trained + activations + logits);
  const training = held.bytes + trained + activations + logits + slack + RUNTIME_BYTES;
  const loading = held.loadsFloat ? 4 * model.namedParameters().reduce((n, [, p]) => n + p.size, 0) + RUNTIME_BYTES : 0;
  return { weights: held.bytes, trained, activations, logits, runtime: RUNTIME_BYTES, slack, loading, total: Math.max(training, loading), formats: held.formats };
}

/** What the base holds once training starts, by parameter, and whether loading holds float32 of it first. */
function heldBytes(model: Module, spec: ModelSpec, config: EstimateConfig): { bytes: number; formats: string; loadsFloat: boolean } {
  // What trains is counted with its gradient and state (trained); the adapters are no part of the file.
  const base = model.namedParameters().filter(([name]) => !isAdapterParameter(name));
  const params = base.filter(([, p]) => !p.requiresGrad);
  const formats = new Set<string>();
  let bytes = 0;
  const add = (format: string, n: number): void => {
    formats.add(format);
    bytes += n;
  };
  if (initIsGguf(config.init)) {
    const file = ggufHeaderRead(config.init);
    const sources = ggufSources(file, spec as LlamaSpec, base);
    for (const [name, p] of params) {
      const info = file.tensors.get(sources.get(name) ?? '');
      if (!info) add('float32', 4 * p.size);
      else if (info.type === 'F32' || info.type === 'F16' || info.type === 'BF16') add('float32', 4 * p.size);
      else add(info.type, info.bytes);
    }
    return { bytes, formats: [...formats].join(' + '), loadsFloat: false };
  }
  const mlx = initIsFolder(config.init) ? mlxQuantizationOf(readHfConfig(config.init), `${config.init}/config.json`) : null;
  // An MLX folder's matrices are its groups (mlx-lm quantizes those our mlx scheme does); else the asked scheme's.
  const scheme = mlx ? (`mlx${mlx.bits}` as const) : config.loraBaseDtype;
  const plan = scheme !== undefined && isQuantScheme(scheme) && spec.type === 'llama' ? quantizationPlan(model, spec, scheme) : null;
  for (const [name, p] of params) {
    const type: QuantType | null | undefined = plan?.get(name);
    if (type) add(type, quantBytes(type, p.shape[0], p.shape[1]));
    else if (scheme === 'bf16' && !p.requiresGrad && p.ndim === 2) add('bfloat16', 2 * p.size);
    else add('float32', 4 * p.size);
  }
  // An MLX folder is read in its blocks; a float folder quantized at load is float32 first.
  return { bytes, formats: [...formats].join(' + '), loadsFloat: plan !== null && !initIsQuantized(config.init) };
}

/**
 * Activations a step keeps, float32. One decoder layer's working set per token (its projections,
 * the MLP's three intermediate rows, attention's probabilities over the window, the adapters'
 * small rows): 10 widths + 9 intermediates + heads × window values, as the engine measured it.
 * Under checkpointing a step holds every layer's input and one layer's working set; without, every
 * layer's.
 */
function activationBytes(spec: Extract<ModelSpec, { type: 'llama' | 'gpt2' }>, tokens: number, window: number, checkpointing: boolean): number {
  const intermediate = spec.type === 'llama' ? spec.intermediate : 4 * spec.width;
  const perLayer = 4 * tokens * (10 * spec.width + 9 * intermediate + spec.heads * window);
  const inputs = 4 * tokens * spec.width * spec.layers;
  return checkpointing ? inputs + perLayer : spec.layers * perLayer;
}

/** "6.12 GiB (weights 4.33 GiB q4_0 + q6_k, …)": the estimate as a run's log line states it. */
export function describeEstimate(m: TrainingMemory): string {
  const g = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;
  const loading = m.loading > 0 ? `; loading the float32 folder first: ${g(m.loading)}` : '';
  return `${g(m.total)} (weights ${g(m.weights)} ${m.formats}, trained values with gradients and optimizer state ${g(m.trained)}, activations ${g(m.activations)}, logits ${g(m.logits)}, runtime ${g(m.runtime)}, slack ${g(m.slack)}${loading})`;
}

/**
 * Refuses, before anything is loaded, a run whose estimate exceeds what `processes` processes of
 * this machine can have (MemAvailable, shared among them), naming both; returns the estimate's line.
 */
export function checkTrainingMemory(config: EstimateConfig, spec: ModelSpec, window: number, processes = 1, available = availableMemory()): string | null {
  const m = estimateTrainingMemory(config, spec, window);
  if (!m) return null;
  const line = describeEstimate(m);
  const share = available / processes;
  if (m.total > share) {
    const who = processes > 1 ? `each of ${processes} processes on this machine` : 'this process';
    throw new ConfigError('command line', '--init', `the run needs an estimated ${line} in ${who}; this machine has ${(share / 2 ** 30).toFixed(2)} GiB available for it (a smaller --context or --batch-size, --activation-checkpointing, a quantized base, or more machines)`);
  }
  return line;
}
