/**
 * What loading a model for inference will hold, estimated from its config (config.json, a GGUF
 * header, a model file's header) before any weight is read, and the refusal of a model that cannot
 * fit the memory available (issue 50: a 70B folder ran until the kernel's OOM killer ended it).
 *
 * The parts, as the engine holds them today:
 * - weights: a quantized one (a GGUF file's, an MLX folder's, --quantize's) at its format's bytes; a
 *   matrix of a folder read in place under --precision bf16, or a BF16 folder's under fp32 (widened
 *   a tile at a time by its products), in bfloat16 (2 bytes: nn/interchange/inference_folder.ts);
 *   any other float one widened to float32 (4 bytes), and under --precision bf16 a weight matrix also
 *   has its held bf16 cast and that cast's packed copy (generate/model_casts.ts,
 *   tensor/ops/packed_weights.ts: 2 + 2 bytes more);
 * - loading: the float32 weights are copied into huge pages once loaded (generate/weight_pages.ts),
 *   the old storages alive until the copy ends: float32 bytes twice, once; --quantize holds the
 *   whole model in float32 beside the blocks it makes;
 * - the KV cache: layers × 2 × kvHeads × headDim × positions × rows, float32 (bf16 under
 *   --precision bf16), its capacity a power of two (kv_cache.ts doubles it as it fills);
 * - activations of the largest forward, a whole prompt's prefill: a layer's working set (10
 *   widths, 3 MLP intermediates, attention's scores and probabilities) and the logits of a row each;
 * - the runtime: Node, the addon and our modules (measured ≈ 70 MB) with the allocator's slack, and
 *   5 % of the weights for the kernels' scratch (WEIGHT_SLACK).
 * The peak is the larger of loading and generating.
 */
import type { ModelSpec } from '../nn/models/index.js';
import { createModel } from '../nn/models/index.js';
import { buildDeferred } from '../tensor/deferred_init.js';
import { withoutRandomInit } from '../tensor/init_scope.js';
import type { Precision } from '../tensor/precision.js';
import { type QuantType, quantBytes } from '../tensor/quant/formats.js';
import { SmolError } from '../util/errors.js';

/**
 * Positions a sequence is counted at where the command does not bound them (serve, chat: a request
 * may run to the model's context, 32k to 128k for today's models, whose KV cache at --max-batch
 * rows would refuse a 1B model on a 16 GB machine): a long conversation's length. generate counts
 * its prompt and --max-new-tokens instead.
 */
export const DEFAULT_POSITIONS = 4096;

/**
 * The allocator's and the kernels' share beside the weights (scratch of the products, free lists):
 * bench:generate-memory's Qwen2.5-0.5B shape held 282 MB beyond its 1976 MB of float32 weights
 * where the parts counted 210 MB (runtime) and 3 MB (KV cache).
 */
const WEIGHT_SLACK = 0.05;

/** What a load in place reads and widens at a time (inference_folder.ts CHUNK). */
const CHUNK_BYTES = 16 * 2 ** 20;

/** Node, the addon and our modules before any weight, with the allocator's slack (as memory_estimate.ts for training). */
export const RUNTIME_BYTES = 200 * 2 ** 20;

export interface InferenceMemory {
  /** The weights as held once loaded. */
  weights: number;
  /** The formats they are held in ("float32", "float32 + q4_k", ...). */
  formats: string;
  kvCache: number;
  activations: number;
  runtime: number;
  /** Loading's peak: the weights and their float32 copy into huge pages. */
  loading: number;
  /** Generating: the weights, the KV cache, the activations and the runtime. */
  generating: number;
  /** The larger of loading and generating. */
  total: number;
  positions: number;
  rows: number;
}

export interface InferenceShape {
  /** Weights held quantized, by parameter name, with their format (absent: a float weight). */
  formats?: ReadonlyMap<string, QuantType>;
  precision?: Precision;
  /** Positions a sequence may reach (the KV cache's length); default DEFAULT_POSITIONS, at most the model's context. */
  positions?: number;
  /** Sequences decoded together (serve's --max-batch); default 1. */
  rows?: number;
  /** The quantized formats are made at load from float32 weights (--quantize): every weight is float32 first. */
  quantizedAtLoad?: boolean;
  /** The float matrices are held in this 16-bit float (a folder read in place for bf16 generation; a BF16 or F16 folder's for fp32: nn/interchange/inference_folder.ts): 2 bytes, no cast. */
  halfMatrices?: 'bfloat16' | 'float16';
  /** Each weight is read straight into its place (nn/interchange/inference_folder.ts): no second copy while loading. */
  inPlace?: boolean;
}

/** A model that cannot fit: the need and what is available, both named. */
export class InsufficientMemoryError extends SmolError {
  constructor(readonly need: InferenceMemory, readonly available: number, message: string) {
    super('MEMORY', message);
  }
}

/** The parameters of `spec`'s model by name and shape, built deferred: nothing is held. */
export function parameterShapes(spec: ModelSpec): [string, readonly number[]][] {
  const model = buildDeferred(() => withoutRandomInit(() => createModel(spec, 0)));
  return model.namedParameters().map(([name, p]) => [name, p.shape]);
}

/** The estimate for `spec` held as `shape` says. */
export function estimateInferenceMemory(spec: ModelSpec, shape: InferenceShape = {}, params = parameterShapes(spec)): InferenceMemory {
  const precision = shape.precision ?? 'fp32';
  const context = 'context' in spec ? spec.context : 0;
  const positions = Math.max(1, Math.min(shape.positions ?? DEFAULT_POSITIONS, context || Infinity));
  const rows = shape.rows ?? 1;
  const formats = new Set<string>();
  let [weights, float32, all, largest] = [0, 0, 0, 0];
  for (const [name, dims] of params) {
    const size = dims.reduce((a, b) => a * b, 1);
    all += 4 * size;
    largest = Math.max(largest, 4 * size);
    const format = shape.formats?.get(name);
    if (format !== undefined) {
      formats.add(format);
      weights += quantBytes(format, size / dims[dims.length - 1], dims[dims.length - 1]);
      continue;
    }
    if (shape.halfMatrices && dims.length === 2) {
      formats.add(shape.halfMatrices);
      weights += 2 * size;
      continue;
    }
    formats.add('float32');
    float32 += 4 * size;
    // Under bf16 a matrix's cast and its packed copy are held beside it.
    weights += 4 * size + (precision === 'bf16' && dims.length === 2 ? 4 * size : 0);
  }
  const kvCache = kvBytes(spec, nextPowerOfTwo(positions), rows, precision);
  const activations = activationBytes(spec, positions, rows);
  const loading = (shape.inPlace ? weights + CHUNK_BYTES : widenedLoading(weights, float32, largest, all, shape.quantizedAtLoad)) + RUNTIME_BYTES;
  const generating = weights * (1 + WEIGHT_SLACK) + kvCache + activations + RUNTIME_BYTES;
  return { weights, formats: [...formats].join(' + '), kvCache, activations, runtime: RUNTIME_BYTES, loading, generating, total: Math.max(loading, generating), positions, rows };
}

/**
 * Loading into a float32 arena (nn/interchange/hf_folder.ts loadPretrained, a model file): the file
 * read whole (counted as float32: at most its size), the arena, one tensor widened beside them, and
 * the float32 weights copied into huge pages (generate/weight_pages.ts) before the arena is dropped;
 * --quantize: the whole float32 model and the blocks made from it. An upper bound: bench:generate-memory's
 * 2-layer Qwen2.5-0.5B shape (an fp32 folder) peaked at 3.77 times its float32 bytes, this says 3.82.
 */
function widenedLoading(weights: number, float32: number, largest: number, all: number, quantizedAtLoad = false): number {
  return Math.max(2 * all + largest + float32, quantizedAtLoad ? all + weights - float32 : 0);
}

/** The KV cache of `rows` sequences at `positions` each: every attention layer's keys and values. */
export function kvBytes(spec: ModelSpec, positions: number, rows: number, precision: Precision = 'fp32'): number {
  const bytes = precision === 'bf16' ? 2 : 4;
  if (spec.type === 'llama') return spec.layers * 2 * spec.kvHeads * spec.headDim * positions * rows * bytes;
  if (spec.type === 'gpt2') return spec.layers * 2 * spec.width * positions * rows * bytes;
  return 0;
}

/**
 * The largest forward's float32 working set: one prompt's prefill of `positions` tokens (a batch
 * prefills prompts of one length together: counted as one), a layer's at a time (attention's scores
 * and probabilities, [heads, positions, positions] each, are made whole: tensor/ops/attention.ts),
 * and the logits of a decode step's `rows`.
 */
function activationBytes(spec: ModelSpec, positions: number, rows: number): number {
  if (spec.type !== 'llama' && spec.type !== 'gpt2') return 0;
  const intermediate = spec.type === 'llama' ? spec.intermediate : 4 * spec.width;
  return 4 * (positions * (10 * spec.width + 3 * intermediate + 2 * spec.heads * positions) + rows * spec.vocabSize);
}

function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(16, n)));
}

/**
 * "≈ 141.2 GB (weights 141.1 GB float32, KV cache 0.3 GB at 2048 positions × 1, …)": the estimate as
 * a line; without `loading` (pipeline stages, which load one weight at a time), generating's part only.
 */
export function describeInferenceMemory(m: InferenceMemory, loading = true): string {
  const parts = `weights ${gb(m.weights)} ${m.formats}, KV cache ${gb(m.kvCache)} at ${m.positions} positions × ${m.rows}, activations ${gb(m.activations)}, runtime ${gb(m.runtime)}`;
  return loading ? `≈ ${gb(m.total)} (${parts}; loading peaks at ${gb(m.loading)})` : `≈ ${gb(m.generating)} (${parts})`;
}

/**
 * Refuses `m` when it exceeds `available` bytes, naming both and the ways out; `where` names whose
 * memory it is ("this node has"); `fourBitOf`: the same model from a 4-bit file, where that is a way out.
 */
export function checkInferenceMemory(m: InferenceMemory, available: number, where = 'this node has', fourBitOf?: () => InferenceMemory | undefined): void {
  if (m.total <= available) return;
  const fourBit = fourBitOf?.();
  const ways = [`\`--stages N\` over nodes whose available memory adds up to ${gb(m.generating)}`];
  if (fourBit && fourBit.total < m.total) ways.push(`a 4-bit file (q4_k_m: ≈ ${gb(fourBit.total)}; \`smolcluster export --quantize q4_k_m\` on a machine that holds it)`);
  if (m.kvCache > m.weights / 4) ways.push('fewer positions or rows');
  throw new InsufficientMemoryError(m, available, `the model needs ${describeInferenceMemory(m)}; ${where} ${gb(available)} available. Ways out: ${ways.join('; ')}`);
}

export function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(bytes < 1e10 ? 2 : 1)} GB`;
}
