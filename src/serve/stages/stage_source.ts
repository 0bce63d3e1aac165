/**
 * The model a pipeline's processes generate with, from what `--model` names (generate/model_source.ts),
 * without reading its weights: the spec from the folder's config.json, the safetensors header, the
 * model file's header or the GGUF file's metadata, and where the weights are (each stage reads its
 * own layers' from there, in the formats parallel/pipeline/stage_weights.ts gives them).
 */
import { join, resolve } from 'node:path';
import { ModelSourceError, type ResolvedSource, resolveModelSource } from '../../generate/model_source.js';
import { sourceSpec } from '../../generate/source_memory.js';
import { type GgufFile, isGgufFile, readGgufHeader } from '../../nn/interchange/gguf.js';
import { specFromGguf } from '../../nn/interchange/gguf_llama.js';
import { readHfConfig } from '../../nn/interchange/hf_folder.js';
import { mlxQuantizationOf } from '../../nn/interchange/mlx_folder.js';
import type { ModelSpec } from '../../nn/models/index.js';
import type { QuantScheme } from '../../nn/quantize_model.js';
import { deferredModel } from '../../parallel/pipeline/stage_model.js';
import { type StageWeights, heldFormats, quantizedSummary } from '../../parallel/pipeline/stage_weights.js';

export interface StageSource {
  resolved: ResolvedSource;
  spec: ModelSpec;
  /** What each stage loads its layers from (a GGUF file's header read once, here). */
  weights: StageWeights;
  /** A GGUF file's header: its metadata holds the tokenizer, end ids and chat template. */
  gguf?: GgufFile;
  /** --quantize: the scheme and the quantized matrices' bytes in float32 and as the stages hold them. */
  quantized?: { scheme: QuantScheme; bytesBefore: number; bytesAfter: number };
}

export interface StageSourceOptions {
  /** A PEFT adapter folder each stage merges into its layers (not into a GGUF file's). */
  adapter?: string;
  quantize?: QuantScheme;
}

/** The model `source` names, its weights' formats checked as loading checks them (--quantize over a quantized file is refused here, before any stage starts). */
export async function stageSource(source: string, o: StageSourceOptions = {}): Promise<StageSource> {
  const resolved = resolveModelSource(source);
  const { spec, weights, gguf } = await weightsOf(resolved, o);
  const whole = deferredModel(spec, null);
  const formats = heldFormats(spec, whole, weights);
  const quantized = o.quantize !== undefined ? { scheme: o.quantize, ...quantizedSummary(whole, formats) } : undefined;
  return { resolved, spec, weights, ...(gguf ? { gguf } : {}), ...(quantized ? { quantized } : {}) };
}

async function weightsOf(resolved: ResolvedSource, o: StageSourceOptions): Promise<{ spec: ModelSpec; weights: StageWeights; gguf?: GgufFile }> {
  const adapter = carriedAdapter(resolved, o.adapter);
  if (resolved.kind === 'file' && isGgufFile(resolved.path)) {
    // As one process refuses it (generate/load_generator.ts).
    if (adapter !== undefined) throw new ModelSourceError('--adapter', 'is not carried over --stages with a GGUF file yet (one process runs it unmerged over the file: drop --stages)');
    const gguf = await readGgufHeader(resolved.path);
    return { spec: specFromGguf(gguf), weights: { gguf, quantize: o.quantize }, gguf };
  }
  // The file is read once here for its spec; each stage then reads its tensors.
  const spec = sourceSpec(resolved);
  const quantization = resolved.kind === 'folder' ? mlxQuantizationOf(readHfConfig(resolved.path), join(resolved.path, 'config.json')) : null;
  if (quantization === null) return { spec, weights: { file: resolved.path, adapter, quantize: o.quantize } };
  // As a GGUF file's: an adapter over quantized layers runs unmerged, in one process.
  if (adapter !== undefined) throw new ModelSourceError('--adapter', 'is not carried over --stages with an MLX quantized folder yet (one process runs it unmerged over the folder: drop --stages)');
  return { spec, weights: { mlx: resolved.path, quantization, quantize: o.quantize } };
}

/** The one PEFT folder the stages merge: --adapter's, or the source's own (an adapter folder, a LoRA run's saved adapter). */
function carriedAdapter(resolved: ResolvedSource, flag: string | undefined): string | undefined {
  const own = resolved.adapter;
  if (own === undefined) return flag;
  if (own.kind === 'checkpoint') throw new ModelSourceError(own.file, 'is a LoRA run\'s checkpoint, which runs in one process: drop --stages, or give --stages the run\'s saved adapter folder');
  // A stage process is started with --model SRC --adapter DIR: the same folder again is the same adapter.
  if (flag !== undefined && resolve(flag) !== resolve(own.dir)) throw new ModelSourceError('--adapter', `the model is LoRA adapters already (${own.dir}); over --stages give one adapter`);
  return own.dir;
}
