/**
 * Putting LoRA adapters on a model, and taking them off again merged into its weights. Targets are
 * Hugging Face module names as PEFT's `target_modules` takes them: a module is wrapped when its
 * name is a target or ends with `.target` (`q_proj` wraps every layer's self_attn.q_proj). GPT-2's
 * c_attn / c_proj / c_fc are Linear layers here (Conv1D in transformers, which PEFT adapts with
 * fan_in_fan_out): the adapter's A [r, in] and B [out, r] are the same either way.
 */
import { kernelsFor } from '../../tensor/dispatch.js';
import { deviceMemory } from '../../tensor/storage.js';
import { markUnchanging } from '../../tensor/ops/packed_weights.js';
import { holdFrozenCasts } from '../../tensor/ops/cast_frozen.js';
import { dequantize } from '../../tensor/ops/quant.js';
import { isQuantType } from '../../tensor/quant/formats.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../util/rng.js';
import { Linear } from '../layers/linear.js';
import { type ModelSpec, createModel } from '../models/index.js';
import type { Module } from '../module.js';
import { LoraLinear, type LoraShape } from './lora_linear.js';
import { isAdapterParameter } from './names.js';
import { fromBf16BitsArray } from '../../util/float_formats.js';

export interface LoraOptions extends LoraShape {
  /** Module names (PEFT's target_modules), e.g. ['q_proj', 'v_proj']. */
  targets: readonly string[];
  /** Draws the A matrices and the dropout masks (the run's seed: every rank starts equal). */
  seed?: number;
}

/** The targets each family names most often (PEFT's defaults for them): attention's query and value projections. */
export function defaultLoraTargets(spec: Pick<ModelSpec, 'type'>): string[] {
  return spec.type === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'];
}


/**
 * Wraps every Linear `targets` names in a LoraLinear and freezes everything else (PEFT's default,
 * bias 'none'): only the adapters' A and B train. Before the arena exists (before training or
 * `to(device)`). Returns the wrapped modules' names; a target that matches no module, or matches
 * one that is not a Linear, is refused by name.
 */
export function applyLora(model: Module, opts: LoraOptions): string[] {
  checkShape(opts);
  const modules = new Map(model.namedModules());
  const wrapped: string[] = [];
  const rng = Rng.derive(opts.seed ?? 0, 0x4c6f5241);
  const dropRng = Rng.derive(opts.seed ?? 0, 0x4c6f5241, 1);
  for (const target of expandAllLinear(opts.targets, modules)) {
    const names = [...modules.keys()].filter((n) => n === target || n.endsWith(`.${target}`));
    if (names.length === 0) throw new Error(`--lora-targets: no module of the model is named ${target} (${moduleNamesHint(modules)})`);
    for (const name of names) {
      const m = modules.get(name)!;
      if (m instanceof LoraLinear) continue;
      if (!(m instanceof Linear)) throw new Error(`--lora-targets: ${name} is a ${m.constructor.name}, not a Linear layer LoRA can adapt`);
      const dot = name.lastIndexOf('.');
      const parent = modules.get(dot < 0 ? '' : name.slice(0, dot))!;
      parent.replaceModule(name.slice(dot + 1), new LoraLinear(m, opts, rng, dropRng));
      wrapped.push(name);
    }
  }
  model.freeze((n) => !isAdapterParameter(n));
  return wrapped.sort(byPosition(model));
}

/** PEFT's `all-linear`: every Linear layer but the output one (lm_head), by its last name; other target lists as given. */
function expandAllLinear(targets: readonly string[], modules: ReadonlyMap<string, Module>): readonly string[] {
  if (!targets.includes(ALL_LINEAR)) return targets;
  if (targets.length > 1) throw new Error(`--lora-targets: ${ALL_LINEAR} stands alone (PEFT's target_modules="all-linear"), not beside ${targets.filter((t) => t !== ALL_LINEAR).join(',')}`);
  const leaves = [...modules].filter(([n, m]) => m instanceof Linear && n !== 'lm_head').map(([n]) => n.slice(n.lastIndexOf('.') + 1));
  return [...new Set(leaves)];
}

/** PEFT's target_modules value for every Linear layer but the output one. */
export const ALL_LINEAR = 'all-linear';

function checkShape(o: LoraShape & { targets: readonly string[] }): void {
  if (!(Number.isInteger(o.rank) && o.rank > 0)) throw new Error(`--lora-rank: expected a positive integer, got ${o.rank}`);
  if (!(Number.isFinite(o.alpha) && o.alpha > 0)) throw new Error(`--lora-alpha: expected a positive number, got ${o.alpha}`);
  if (!(o.dropout >= 0 && o.dropout < 1)) throw new Error(`--lora-dropout: expected a probability in [0, 1), got ${o.dropout}`);
  if (o.targets.length === 0) throw new Error('--lora-targets: name at least one module (e.g. q_proj,v_proj)');
}

/** A few distinct last names of the model's Linear layers, for an error message. */
function moduleNamesHint(modules: Map<string, Module>): string {
  const leaves = [...new Set([...modules].filter(([, m]) => m instanceof Linear).map(([n]) => n.slice(n.lastIndexOf('.') + 1)))];
  return `its Linear layers are named ${leaves.slice(0, 8).join(', ')}`;
}

/** Orders module names as the model lists its parameters. */
function byPosition(model: Module): (a: string, b: string) => number {
  const order = new Map(model.namedModules().map(([n], i) => [n, i]));
  return (a, b) => order.get(a)! - order.get(b)!;
}

/** The LoRA-wrapped layers of a model, by module name. */
export function loraLayers(model: Module): [string, LoraLinear][] {
  return model.namedModules().filter((e): e is [string, LoraLinear] => e[1] instanceof LoraLinear);
}

/**
 * W += scaling · B A, in place on a float32 weight [out, in] (on the host: `weight`, `a` [r, in]
 * and `b` [out, r] are host values), accumulated in float64 per element.
 */
export function addLoraDelta(weight: Float32Array, a: Float32Array, b: Float32Array, out: number, inF: number, rank: number, scaling: number): void {
  const row = new Float64Array(inF);
  for (let o = 0; o < out; o++) {
    row.fill(0);
    for (let k = 0; k < rank; k++) {
      const bk = b[o * rank + k];
      if (bk === 0) continue;
      const aRow = k * inF;
      for (let i = 0; i < inF; i++) row[i] += bk * a[aRow + i];
    }
    const w = o * inF;
    for (let i = 0; i < inF; i++) weight[w + i] += scaling * row[i];
  }
}

/**
 * A plain model of `spec` (no adapters) holding `model`'s weights with every adapter merged in
 * (W + scaling · B A): what `--merge-lora` saves as a Hugging Face folder. Reads the values with
 * await, so the model may live on any device; the merged model is on the host.
 */
export async function mergeLora(model: Module, spec: ModelSpec): Promise<Module> {
  // Every value is written below: drawing the random ones first only costs time (minutes at 8B).
  const merged = withoutRandomInit(() => createModel(spec, 0));
  const target = new Map(merged.namedParameters());
  const lora = new Map(loraLayers(model));
  for (const [name, p] of model.namedParameters()) {
    if (isAdapterParameter(name)) continue;
    const into = target.get(name);
    if (!into) throw new Error(`mergeLora: the model has ${name}, which a plain ${spec.type} model of its spec does not`);
    const layer = name.endsWith('.weight') ? lora.get(name.slice(0, -'.weight'.length)) : undefined;
    into.storage.write(layer ? await mergedWeight(layer) : Float32Array.from(await readParameterFloat32(p)));
  }
  const buffers = await model.readBuffers();
  merged.writeBuffers(buffers.map(([, b]) => b));
  return merged;
}

/** A LoRA layer's weight with its adapter merged in, W + scaling · B A, as float32 on the host (W dequantized or widened). */
export async function mergedWeight(layer: LoraLinear): Promise<Float32Array> {
  const values = Float32Array.from(await readParameterFloat32(layer.weight));
  const [a, b] = await Promise.all([layer.lora_A.weight.read(), layer.lora_B.weight.read()]) as Float32Array[];
  addLoraDelta(values, a, b, layer.outFeatures, layer.inFeatures, layer.shape.rank, layer.scaling);
  return values;
}

/**
 * A parameter's values as float32 on the host: a base held in bf16 widened (its bits are float32's
 * top half), a quantized one dequantized (a merge over a QLoRA base is float: merge_report.ts says
 * what putting it back into the base's formats would keep).
 */
export async function readParameterFloat32(p: Tensor): Promise<Float32Array> {
  if (isQuantType(p.dtype)) return await dequantize(p).read() as Float32Array;
  const values = await p.read();
  if (!(values instanceof Uint16Array)) return values as Float32Array;
  return fromBf16BitsArray(values);
}

/**
 * Holds the frozen base weight of every LoRA layer in bfloat16 (`--lora-base-dtype bf16`): half the
 * memory of the base's largest part; its matmuls then run on bf16 operands (float32 accumulation),
 * the adapters and their gradients stay float32. After the base weights are loaded (a rounding).
 * The other frozen matrices (the MLP, the embedding the head is tied to) stay float32, but a bf16
 * step casts each once and reuses the cast while it stays frozen (tensor/ops/cast_frozen.ts), where
 * autocast would cast it for every product. Returns the bytes the LoRA base weights now take.
 */
export function holdBaseInBf16(model: Module): number {
  let bytes = 0;
  for (const [, layer] of loraLayers(model)) {
    const w = layer.weight;
    if (w.dtype === 'bfloat16') continue;
    // A frozen parameter is its own storage (outside the arena): it may change dtype.
    const held = deviceMemory(w.device).alloc('bfloat16', w.size);
    kernelsFor(w).toBf16(w.buffer, held.buffer);
    w.storage = held;
    markUnchanging(w); // frozen: its products may run on a packed copy (tensor/ops/packed_weights.ts)
    bytes += 2 * w.size;
  }
  holdFrozenCasts(model.parameters().filter((p) => !p.requiresGrad && p.ndim === 2));
  return bytes;
}
