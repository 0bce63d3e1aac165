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
import { modelLayers } from '../../nn/layer_list.js';
import type { LlamaSpec, ModelSpec } from '../../nn/models/index.js';
import { createModel } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { isAdapterParameter } from '../../nn/lora/names.js';
import { isQuantScheme, quantizationPlan } from '../../nn/quantize_model.js';
import { planStages } from '../../parallel/pipeline/stage_plan.js';
import { layerBytes, layerWeights } from '../../parallel/pipeline/stage_weights.js';
import { buildDeferred } from '../../tensor/deferred_init.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import { type QuantType, quantBytes } from '../../tensor/quant/formats.js';
import type { Tensor } from '../../tensor/tensor.js';
import { ConfigError } from '../../util/errors.js';
import { prepareFineTune } from '../loop/fine_tune.js';
import type { TrainConfig } from './config.js';
import { initIsGguf, initIsQuantized, initMlxQuantization } from './init_source.js';

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
  /** Over pipeline stages: the stage estimated (the largest), of how many. */
  stage?: { index: number; of: number };
}

type EstimateConfig = Pick<TrainConfig, 'init' | 'loraRank' | 'loraAlpha' | 'loraDropout' | 'loraTargets' | 'loraBaseDtype' | 'adapter' | 'freeze' | 'mergeLora' | 'seed' | 'optimizer' | 'batchSize' | 'activationCheckpointing'>;

/**
 * Pipeline stages over a quantized base (train/strategies/pipeline_quantized.ts): each process
 * holds its stage's layers only, so the estimate is that of the largest stage.
 */
export interface StageSplit {
  stages: number;
  microBatches: number;
  schedule: 'gpipe' | '1f1b';
}

/**
 * The estimate for a run of `config` over the model `spec` describes, at `window` tokens a sample;
 * over a quantized base cut into `split`'s stages, the largest stage's.
 */
export function estimateTrainingMemory(config: EstimateConfig, spec: ModelSpec, window: number, split?: StageSplit): TrainingMemory | null {
  if (spec.type !== 'llama' && spec.type !== 'gpt2') return null;
  // Built deferred and without random fills: nothing is held, every shape is known.
  const model = buildDeferred(() => {
    const m = withoutRandomInit(() => createModel(spec, 0));
    prepareFineTune(m, spec, config);
    return m;
  });
  const held = heldBytes(model, spec, config);
  const stateBytes = 8 + (STATE_BYTES[config.optimizer] ?? 8);
  const ckpt = config.activationCheckpointing === true;
  if (split && split.stages > 1 && held.quantized) return largestStage(model, spec, held, { split, stateBytes, tokens: config.batchSize * window, window, ckpt });
  const trained = model.namedTrainable().reduce((n, [, p]) => n + p.size, 0) * stateBytes;
  const tokens = config.batchSize * window;
  const activations = activationBytes(spec, tokens, window, ckpt, spec.layers);
  // Logits, their log-softmax and their gradient, float32.
  const logits = 3 * 4 * tokens * spec.vocabSize;
  const slack = SLACK * (trained + activations + logits);
  const training = held.bytes + trained + activations + logits + slack + RUNTIME_BYTES;
  const loading = held.loadsFloat ? 4 * model.namedParameters().reduce((n, [, p]) => n + p.size, 0) + RUNTIME_BYTES : 0;
  return { weights: held.bytes, trained, activations, logits, runtime: RUNTIME_BYTES, slack, loading, total: Math.max(training, loading), formats: held.formats };
}

/**
 * The largest of the stages the run's plan would cut on equal ranks (each layer's time its weights,
 * as the probed plan makes it): the stage's base as held and its adapters with their state, its
 * blocks' activations for each micro-batch alive at once (1F1B: at most the stages; GPipe: all),
 * and the logits on the last stage. Each stage loads its layers one parameter at a time, so a
 * float folder quantized at load is never float32 whole.
 */
function largestStage(model: Module, spec: Extract<ModelSpec, { type: 'llama' | 'gpt2' }>, held: HeldBytes, o: { split: StageSplit; stateBytes: number; tokens: number; window: number; ckpt: boolean }): TrainingMemory {
  const layers = modelLayers(model, spec.type);
  // The embedding is a lookup: next to nothing, as the probed plan times it.
  const plan = planStages(layerWeights(layers).map((w, l) => (l === 0 ? 1e-6 : w)), Array.from({ length: o.split.stages }, () => ({ speed: 1 })));
  const weights = layerBytes(layers, (name, p) => (p.requiresGrad ? 0 : held.of(name, p)));
  const trained = layerBytes(layers, (_, p) => (p.requiresGrad ? p.size * o.stateBytes : 0));
  const micro = Math.ceil(o.tokens / Math.min(o.split.microBatches, o.tokens / o.window));
  const live = o.split.schedule === '1f1b' ? Math.min(o.split.stages, o.split.microBatches) : o.split.microBatches;
  const stages = plan.ranges.map(([a, b], index): TrainingMemory => {
    const sum = (xs: number[]): number => xs.slice(a, b).reduce((x, y) => x + y, 0);
    const blocks = Math.max(0, Math.min(b, layers.length - 1) - Math.max(a, 1));
    const activations = live * activationBytes(spec, micro, o.window, o.ckpt, blocks);
    const logits = b === layers.length ? 3 * 4 * micro * spec.vocabSize : 0;
    const slack = SLACK * (sum(trained) + activations + logits);
    const total = sum(weights) + sum(trained) + activations + logits + slack + RUNTIME_BYTES;
    return { weights: sum(weights), trained: sum(trained), activations, logits, runtime: RUNTIME_BYTES, slack, loading: 0, total, formats: held.formats, stage: { index, of: o.split.stages } };
  });
  return stages.reduce((big, e) => (e.total > big.total ? e : big));
}

interface HeldBytes {
  bytes: number;
  formats: string;
  loadsFloat: boolean;
  /** The base is held in quantized blocks (a GGUF file, an MLX folder, a quantized --lora-base-dtype). */
  quantized: boolean;
  /** One frozen parameter's bytes as held. */
  of(name: string, p: Tensor): number;
}

/** What the base holds once training starts, by parameter, and whether loading holds float32 of it first. */
function heldBytes(model: Module, spec: ModelSpec, config: EstimateConfig): HeldBytes {
  // What trains is counted with its gradient and state (trained); the adapters are no part of the file.
  const base = model.namedParameters().filter(([name]) => !isAdapterParameter(name));
  const params = base.filter(([, p]) => !p.requiresGrad);
  const formats = new Set<string>();
  const byName = new Map<string, number>();
  const add = (name: string, format: string, n: number): void => {
    formats.add(format);
    byName.set(name, n);
  };
  const result = (loadsFloat: boolean, quantized: boolean): HeldBytes => ({
    bytes: [...byName.values()].reduce((a, b) => a + b, 0), formats: [...formats].join(' + '), loadsFloat, quantized,
    of: (name, p) => byName.get(name) ?? 4 * p.size,
  });
  if (initIsGguf(config.init)) {
    const file = ggufHeaderRead(config.init);
    const sources = ggufSources(file, spec as LlamaSpec, base);
    for (const [name, p] of params) {
      const info = file.tensors.get(sources.get(name) ?? '');
      if (!info) add(name, 'float32', 4 * p.size);
      else if (info.type === 'F32' || info.type === 'F16' || info.type === 'BF16') add(name, 'float32', 4 * p.size);
      else add(name, info.type, info.bytes);
    }
    return result(false, true);
  }
  const mlx = initMlxQuantization(config.init);
  // An MLX folder's matrices are its groups (mlx-lm quantizes those our mlx scheme does); else the asked scheme's.
  const scheme = mlx ? (`mlx${mlx.bits}` as const) : config.loraBaseDtype;
  const plan = scheme !== undefined && isQuantScheme(scheme) && spec.type === 'llama' ? quantizationPlan(model, spec, scheme) : null;
  for (const [name, p] of params) {
    const type: QuantType | null | undefined = plan?.get(name);
    if (type) add(name, type, quantBytes(type, p.shape[0], p.shape[1]));
    else if (scheme === 'bf16' && !p.requiresGrad && p.ndim === 2) add(name, 'bfloat16', 2 * p.size);
    else add(name, 'float32', 4 * p.size);
  }
  // An MLX folder is read in its blocks; a float folder quantized at load is float32 first.
  return result(plan !== null && !initIsQuantized(config.init), plan !== null);
}

/**
 * Activations a step keeps, float32, over `layers` decoder layers. One decoder layer's working set
 * per token (its projections, the MLP's three intermediate rows, attention's probabilities over the
 * window, the adapters' small rows): 10 widths + 9 intermediates + heads × window values, as the
 * engine measured it. Under checkpointing a step holds every layer's input and one layer's working
 * set; without, every layer's.
 */
function activationBytes(spec: Extract<ModelSpec, { type: 'llama' | 'gpt2' }>, tokens: number, window: number, checkpointing: boolean, layers: number): number {
  const intermediate = spec.type === 'llama' ? spec.intermediate : 4 * spec.width;
  const perLayer = 4 * tokens * (10 * spec.width + 9 * intermediate + spec.heads * window);
  const inputs = 4 * tokens * spec.width * layers;
  return checkpointing ? inputs + (layers > 0 ? perLayer : 0) : layers * perLayer;
}

/** "6.12 GiB (weights 4.33 GiB q4_0 + q6_k, …)": the estimate as a run's log line states it. */
export function describeEstimate(m: TrainingMemory): string {
  const g = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;
  const loading = m.loading > 0 ? `; loading the float32 folder first: ${g(m.loading)}` : '';
  const stage = m.stage ? ` in stage ${m.stage.index} of ${m.stage.of}, the largest` : '';
  return `${g(m.total)}${stage} (weights ${g(m.weights)} ${m.formats}, trained values with gradients and optimizer state ${g(m.trained)}, activations ${g(m.activations)}, logits ${g(m.logits)}, runtime ${g(m.runtime)}, slack ${g(m.slack)}${loading})`;
}

/**
 * Refuses, before anything is loaded, a run whose estimate exceeds what `processes` processes of
 * this machine can have (MemAvailable, shared among them), naming both; returns the estimate's line.
 */
export function checkTrainingMemory(config: EstimateConfig, spec: ModelSpec, window: number, processes = 1, split?: StageSplit, available = availableMemory()): string | null {
  const m = estimateTrainingMemory(config, spec, window, split);
  if (!m) return null;
  const line = describeEstimate(m);
  const share = available / processes;
  if (m.total > share) {
    const who = processes > 1 ? `each of ${processes} processes on this machine` : 'this process';
    throw new ConfigError('command line', '--init', `the run needs an estimated ${line} in ${who}; this machine has ${(share / 2 ** 30).toFixed(2)} GiB available for it (a smaller --context or --batch-size, --activation-checkpointing, a quantized base, or more machines)`);
  }
  return line;
}
