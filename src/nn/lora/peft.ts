/**
 * LoRA adapters as PEFT folders: `adapter_config.json` (LoraConfig's fields) and
 * `adapter_model.safetensors` (float32 A [r, in] and B [out, r] per module, PEFT's names), which
 * `peft.PeftModel.from_pretrained(base, dir)` loads onto the transformers model, and which we load
 * back (ours, or one PEFT wrote) onto a model of ours, or merge into its weights for generation.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic_file.js';
import { readJsonObjectFile } from '../../util/json_file.js';
import { CheckpointError } from '../checkpoint.js';
import { type SafeTensor, type WriteTensor, readSafetensors, toFloat32, writeSafetensors } from '../interchange/safetensors.js';
import type { ModelSpec } from '../models/index.js';
import type { Module } from '../module.js';
import { addLoraDelta, applyLora, loraLayers } from './apply.js';
import { parsePeftTensorName, peftTensorName } from './names.js';
import { isQuantType } from '../../tensor/quant/formats.js';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/**
 * An adapter's A and B per module with its config, wherever they were read: a PEFT folder
 * (readPeftAdapter) or a LoRA run's checkpoint (checkpoint_adapter.ts). `file` names them in errors.
 */
export interface AdapterWeights {
  file: string;
  config: AdapterConfig;
  tensors: Map<string, { a: SafeTensor; b: SafeTensor }>;
}

/** What we read of an adapter_config.json. */
export interface AdapterConfig {
  rank: number;
  alpha: number;
  dropout: number;
  /** Module names (last parts, as target_modules lists them), or full names of the modules a regex chose. */
  targets: string[];
}

/**
 * Writes `model`'s adapters into `dir` as PEFT saves them. `base` names the base model
 * (base_model_name_or_path: the --init folder). Returns the files written.
 */
export async function saveAdapter(dir: string, model: Module, spec: ModelSpec, base = ''): Promise<string[]> {
  const layers = loraLayers(model);
  if (layers.length === 0) throw new Error('saveAdapter: the model has no LoRA layers (applyLora first)');
  const { rank, alpha, dropout } = layers[0][1].shape;
  const tensors: [string, WriteTensor][] = [];
  for (const [name, layer] of layers) {
    if (layer.shape.rank !== rank || layer.shape.alpha !== alpha) throw new Error(`saveAdapter: ${name} has rank ${layer.shape.rank}, alpha ${layer.shape.alpha}; one adapter folder holds one rank and alpha (${rank}, ${alpha})`);
    const [a, b] = (await Promise.all([layer.lora_A.weight.read(), layer.lora_B.weight.read()])) as Float32Array[];
    tensors.push([peftTensorName(name, 'A'), { shape: layer.lora_A.weight.shape, data: a }], [peftTensorName(name, 'B'), { shape: layer.lora_B.weight.shape, data: b }]);
  }
  const targets = [...new Set(layers.map(([n]) => n.slice(n.lastIndexOf('.') + 1)))];
  const config = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: base, r: rank, lora_alpha: alpha, lora_dropout: dropout,
    target_modules: targets, bias: 'none', fan_in_fan_out: spec.type === 'gpt2', inference_mode: true, init_lora_weights: true,
    use_rslora: false, use_dora: false, modules_to_save: null, rank_pattern: {}, alpha_pattern: {},
  };
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new CheckpointError(dir, `cannot create the adapter folder: ${(e as Error).message}`);
  }
  writeSafetensors(join(dir, ADAPTER_WEIGHTS), tensors, { format: 'pt' });
  writeFileAtomic(join(dir, ADAPTER_CONFIG), `${JSON.stringify(config, null, 2)}\n`);
  return [ADAPTER_WEIGHTS, ADAPTER_CONFIG];
}

/** Reads a PEFT folder's adapter_config.json; what we cannot honour (DoRA, rsLoRA, per-module ranks) is refused by field. */
export function readAdapterConfig(dir: string): AdapterConfig {
  const file = join(dir, ADAPTER_CONFIG);
  const c = readJsonObjectFile(file, (f, why) => new CheckpointError(f, why));
  if (!c) throw new CheckpointError(dir, `is not a PEFT adapter folder (no ${ADAPTER_CONFIG})`);
  const refuse = (field: string, why: string): CheckpointError => new CheckpointError(file, `${field}: ${why}`);
  if (c.peft_type !== 'LORA') throw refuse('peft_type', `${JSON.stringify(c.peft_type)} is not LORA`);
  if (c.use_dora === true) throw refuse('use_dora', 'DoRA adapters are not supported');
  if (c.use_rslora === true) throw refuse('use_rslora', 'rank-stabilised scaling (alpha / √r) is not supported');
  for (const field of ['rank_pattern', 'alpha_pattern']) {
    if (c[field] && Object.keys(c[field] as object).length > 0) throw refuse(field, 'per-module ranks or alphas are not supported');
  }
  if (Array.isArray(c.modules_to_save) && c.modules_to_save.length > 0) throw refuse('modules_to_save', 'fully trained extra modules are not supported');
  if (c.bias !== undefined && c.bias !== 'none') throw refuse('bias', `${JSON.stringify(c.bias)}: only "none" (base biases frozen) is supported`);
  const rank = Number(c.r);
  const alpha = Number(c.lora_alpha ?? 8);
  if (!(Number.isInteger(rank) && rank > 0)) throw refuse('r', `expected a positive integer, got ${JSON.stringify(c.r)}`);
  const t = c.target_modules;
  const targets = Array.isArray(t) ? t.map(String) : typeof t === 'string' ? [t] : null;
  if (!targets || targets.length === 0) throw refuse('target_modules', `expected a list of module names, got ${JSON.stringify(t)}`);
  return { rank, alpha, dropout: Number(c.lora_dropout ?? 0), targets };
}

/** The adapter file's A and B per module, shapes checked against each other. */
export function readAdapterTensors(dir: string): Map<string, { a: SafeTensor; b: SafeTensor }> {
  const file = join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(file)) throw new CheckpointError(dir, `has no ${ADAPTER_WEIGHTS}`);
  const parts = new Map<string, { a?: SafeTensor; b?: SafeTensor }>();
  for (const [name, t] of readSafetensors(file).tensors) {
    const parsed = parsePeftTensorName(name);
    if (!parsed) throw new CheckpointError(file, `tensor "${name}" is not a LoRA A or B matrix (base_model.model.<module>.lora_A.weight)`);
    const entry = parts.get(parsed.module) ?? {};
    entry[parsed.which === 'A' ? 'a' : 'b'] = t;
    parts.set(parsed.module, entry);
  }
  const out = new Map<string, { a: SafeTensor; b: SafeTensor }>();
  for (const [module, { a, b }] of parts) {
    if (!a || !b) throw new CheckpointError(file, `${module} has lora_${a ? 'B' : 'A'} missing`);
    if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[0] !== b.shape[1]) throw new CheckpointError(file, `${module}: lora_A [${a.shape}] and lora_B [${b.shape}] do not make a rank-r pair`);
    out.set(module, { a, b });
  }
  return out;
}

/** A PEFT folder's adapter: its config and tensors, each checked. */
export function readPeftAdapter(dir: string): AdapterWeights {
  return { file: join(dir, ADAPTER_WEIGHTS), config: readAdapterConfig(dir), tensors: readAdapterTensors(dir) };
}

/** A target list as applyLora takes it: a regex target_modules (PEFT: a full match) becomes the names it matches. */
function targetsFor(config: AdapterConfig, modules: readonly string[], file: string): string[] {
  if (config.targets.length !== 1 || /^[\w.-]+$/.test(config.targets[0])) return config.targets;
  const re = new RegExp(`^(?:${config.targets[0]})$`);
  const names = modules.filter((n) => re.test(n));
  if (names.length === 0) throw new CheckpointError(file, `target_modules ${config.targets[0]} matches no module of the model`);
  return names;
}

/**
 * Loads a PEFT adapter folder (or adapter weights read elsewhere) onto `model`: wraps its target modules first when it has no LoRA
 * layers yet (applyLora with the folder's r, lora_alpha, lora_dropout), then writes every A and B.
 * A module the file adapts that the model has not wrapped, or one wrapped that the file lacks, is
 * refused by name; shapes are checked. Before the arena exists when it wraps. Returns the config.
 */
export function loadAdapter(from: string | AdapterWeights, model: Module, seed = 0): AdapterConfig {
  const { config, file, tensors } = typeof from === 'string' ? readPeftAdapter(from) : from;
  if (loraLayers(model).length === 0) {
    const targets = targetsFor(config, model.namedModules().map(([n]) => n), typeof from === 'string' ? join(from, ADAPTER_CONFIG) : file);
    applyLora(model, { rank: config.rank, alpha: config.alpha, dropout: config.dropout, targets, seed });
  }
  const layers = new Map(loraLayers(model));
  for (const [module, { a, b }] of tensors) {
    const layer = layers.get(module);
    if (!layer) throw new CheckpointError(file, `adapts ${module}, which the model has no LoRA layer for`);
    const wantA = layer.lora_A.weight.shape;
    const wantB = layer.lora_B.weight.shape;
    if (a.shape.join('x') !== wantA.join('x') || b.shape.join('x') !== wantB.join('x')) {
      throw new CheckpointError(file, `${module}: lora_A [${a.shape}] / lora_B [${b.shape}], the model's layer needs [${wantA}] / [${wantB}] (rank ${config.rank})`);
    }
    if (Math.abs(layer.scaling - config.alpha / config.rank) > 1e-12) throw new CheckpointError(file, `${module}: the layer scales by ${layer.scaling}, the adapter by ${config.alpha}/${config.rank}`);
    layer.lora_A.weight.storage.write(toFloat32(file, `${module}.lora_A`, a));
    layer.lora_B.weight.storage.write(toFloat32(file, `${module}.lora_B`, b));
  }
  const missing = [...layers.keys()].filter((m) => !tensors.has(m));
  if (missing.length > 0) throw new CheckpointError(file, `has no A/B for ${missing.length} adapted module(s): ${missing.slice(0, 3).join(', ')}`);
  return config;
}

/**
 * Merges a PEFT adapter folder (or adapter weights read elsewhere) into a plain model's weights in place (W += alpha / r · B A): a base
 * model plus an adapter for generation, at the base's speed. The model's parameters must be on the host.
 */
export async function mergeAdapterInto(from: string | AdapterWeights, model: Module): Promise<AdapterConfig> {
  const { config, file, tensors } = typeof from === 'string' ? readPeftAdapter(from) : from;
  const params = new Map(model.namedParameters());
  for (const [module, { a, b }] of tensors) {
    const w = params.get(`${module}.weight`);
    if (!w || w.ndim !== 2) throw new CheckpointError(file, `adapts ${module}, which is no Linear layer of the model`);
    const [out, inF] = w.shape;
    if (a.shape[1] !== inF || b.shape[0] !== out) throw new CheckpointError(file, `${module}: lora_A [${a.shape}] / lora_B [${b.shape}] do not fit its weight [${w.shape}]`);
    // Its blocks are no floats to add to: such a base takes the adapter unmerged (loadAdapter).
    if (isQuantType(w.dtype)) throw new CheckpointError(file, `${module}: its weight is held in ${w.dtype} blocks, which an adapter is not merged into; put it on unmerged`);
    const values = Float32Array.from(await w.read() as Float32Array);
    addLoraDelta(values, toFloat32(file, `${module}.lora_A`, a), toFloat32(file, `${module}.lora_B`, b), out, inF, a.shape[0], config.alpha / config.rank);
    w.storage.write(values);
  }
  return config;
}
