/**
 * A stage's parameters given their values as they will be held, from their StageWeights
 * (stage_weights.ts): a float file's ranges (a PEFT adapter's update merged) or the seed's recipe,
 * put in the parameter's planned format (--quantize) by the kernel one process's quantizeModel
 * uses, so the blocks are the same; or a GGUF tensor, its blocks kept as they are (q and k rows in
 * Hugging Face's order); or an MLX folder's groups, as one process regroups them. A quantized
 * parameter is frozen and holds its blocks only.
 */
import { type GgufFile } from '../../nn/interchange/gguf.js';
import { ggufSources, readGgufParameter } from '../../nn/interchange/gguf_llama.js';
import { MlxFolder } from '../../nn/interchange/mlx_folder.js';
import { openInitRanges } from '../../nn/interchange/init_ranges.js';
import { AdapterDeltas } from '../../nn/lora/adapter_deltas.js';
import type { LlamaSpec, ModelSpec } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { deferredValues, isDeferred } from '../../tensor/deferred_init.js';
import { quantize } from '../../tensor/ops/quant.js';
import type { QuantType } from '../../tensor/quant/formats.js';
import { CPU, deviceMemory } from '../../tensor/storage.js';
import { Tensor } from '../../tensor/tensor.js';
import type { StageWeights } from './stage_weights.js';

export interface StageValues {
  /** Gives `p` (parameter `name`, deferred) its values: in `format` when it has one (then frozen), else float32. */
  hold(name: string, p: Tensor, format: QuantType | undefined): void;
  close(): void;
}

/**
 * Opens `weights` for the parameters of `whole` (the deferred model a stage keeps its layers of),
 * names and shapes checked. `mapped`: a GGUF tensor's blocks are views of the file mapped read-only
 * where the host can (a training stage's frozen base, shared by the processes of one machine), not copies.
 */
export function openStageValues(spec: ModelSpec, whole: Module, weights: StageWeights, o: { mapped?: boolean } = {}): StageValues {
  if ('gguf' in weights) return ggufValues(spec as LlamaSpec, whole, weights.gguf, o.mapped === true);
  if ('mlx' in weights) return mlxValues(whole, new MlxFolder(weights.mlx, weights.quantization));
  const ranges = 'file' in weights ? openInitRanges(weights.file, whole, spec) : null;
  const adapter = 'file' in weights && weights.adapter !== undefined ? AdapterDeltas.read(weights.adapter) : null;
  // Checked against the whole model, so an adapter naming a module no stage holds is refused on every stage.
  adapter?.check(new Map(whole.namedParameters().map(([name, p]) => [name, p.shape])));
  return {
    hold(name, p, format) {
      let values = ranges ? ranges.read(name, p.shape, 0, p.size) : recipeValues(name, p);
      if (adapter?.adapts(name)) adapter.mergeInto(name, p.shape, (values = Float32Array.from(values)));
      holdFloats(p, values, format);
    },
    close: () => ranges?.close(),
  };
}

function ggufValues(spec: LlamaSpec, whole: Module, file: GgufFile, mapped: boolean): StageValues {
  const sources = ggufSources(file, spec, whole.namedParameters());
  return {
    hold(name, p, format) {
      const v = readGgufParameter(file, spec, sources.get(name)!, mapped);
      if ('values' in v) return holdFloats(p, v.values, format);
      if (v.type !== format) throw new Error(`${file.path}: ${name} is ${v.type}, its stage planned ${format ?? 'float32'}`);
      p.requiresGrad = false;
      p.holdFrozen(deviceMemory(CPU).fromHost(v.blocks, v.type));
    },
    close() {},
  };
}

/** An MLX folder's parameters, each read as it is held (its groups regrouped into our blocks: a copy, not a view of the file). */
function mlxValues(whole: Module, folder: MlxFolder): StageValues {
  try {
    folder.formats(whole.namedParameters());
  } catch (e) {
    folder.close();
    throw e;
  }
  return { hold: (name, p, format) => folder.hold(name, p, format), close: () => folder.close() };
}

/** Float values held as they are, or quantized to `format` (frozen: the float copy is let go). */
function holdFloats(p: Tensor, values: Float32Array, format: QuantType | undefined): void {
  if (format === undefined) return p.bind(deviceMemory(CPU).fromHost(values), null);
  p.requiresGrad = false;
  p.holdFrozen(quantize(Tensor.fromHost(values, p.shape), format).storage);
}

/** The values the seed's recipe gives parameter `name`, exactly as a whole build makes them. */
function recipeValues(name: string, p: Tensor): Float32Array {
  const s = p.storage;
  if (!isDeferred(s)) throw new Error(`pipeline stage: ${name} already holds values`);
  return deferredValues(s, 0, p.size);
}
