/**
 * A Hugging Face folder's model loaded for inference with each weight held once, in the form it
 * is used in, never beside a second copy (issue 50: loadPretrained read the whole file, widened it
 * into a float32 arena, generate then copied that into huge pages and, in bf16, held a cast and its
 * packed copy beside each matrix: 9–11 bytes a parameter measured for the Qwen2.5-0.5B shape):
 * - `matrices: 'bf16'` (bf16 generation): every matrix is a frozen bfloat16 parameter: one the
 *   files hold in BF16 bound to the file's bytes, mapped read-only where the host can map them
 *   (safetensors_ranges.ts bf16Bits: 2 bytes a weight, no copy in the heap; a mapped weight must
 *   never be written), one they hold in F32 or F16 rounded at load, to nearest even as torch's
 *   `.to(torch.bfloat16)` (2 bytes a weight in the heap, where the float32 weight and its held cast
 *   took 6 and its packed copy more: bench:generate-memory's F32 folder in bf16);
 * - `matrices: 'as-read'` (fp32 generation): a matrix the files hold in BF16 as above, one they hold
 *   in F16 as frozen f16 blocks bound to the file's bytes the same way (tensor/quant/f16.ts: a
 *   float16 row is its blocks), both widened exactly by the fp32 products a tile at a time
 *   (ops/linear_bf16_weight.ts, the f16 format's dequantized tiles), so the values are the file's;
 *   one in F32 as below;
 * - `matrices: 'float32'`: every weight as below;
 * - with `quantize` (--quantize SCHEME), each matrix the scheme quantizes (nn/quantize_model.ts's
 *   plan) made into its blocks as it is read, CHUNK elements of whole rows at a time, so the model's
 *   float32 matrices never exist (they once did, whole, with the blocks made from them);
 * - every other weight is float32, written straight into its place in huge-page blocks (as
 *   generate/weight_pages.ts would move it there after) by ranges of CHUNK elements, so no tensor
 *   is ever whole in a second buffer.
 * The model is built deferred (as a GGUF file's or an MLX folder's): nothing is allocated before a
 * parameter is bound. The folder's tensors are checked against the model's names and shapes from
 * the headers before anything is read (SafetensorsRanges).
 */
import { closeSync, openSync } from 'node:fs';
import { buildDeferred } from '../../tensor/deferred_init.js';
import { HugePageBlocks, HugePageBytes } from '../../tensor/huge_page_block.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import { CPU, type Storage, deviceMemory } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { toBf16BitsInto } from '../../util/float_formats.js';
import { CheckpointError } from '../checkpoint.js';
import { heldAsF16Blocks } from '../../tensor/quant/f16.js';
import { quantizeOnCpu } from '../../tensor/dispatch.js';
import { type QuantType, quantBytes } from '../../tensor/quant/formats.js';
import { type QuantScheme, planBytes, quantizationPlan } from '../quantize_model.js';
import type { LlamaSpec } from '../models/llama.js';
import { type ModelSpec, createModel } from '../models/index.js';
import type { Module } from '../module.js';
import { readHfConfig, specFromFolder } from './hf_folder.js';
import { folderWeights, isFolder } from './hf_weights.js';
import { readSafetensorsHeader } from './safetensors.js';
import { SafetensorsRanges } from './safetensors_ranges.js';

/** Elements read and widened at a time (16 MB of float32): the only transient buffer of a load. */
const CHUNK = 1 << 22;

/** A 16-bit float a folder's matrices are held in. */
export type HalfDtype = 'bfloat16' | 'float16';

/**
 * The 16-bit float a folder's files (or a safetensors file) hold its matrices in (BF16 or F16, the
 * first 2-D tensor of either; from their headers: no weight is read), which `as-read` loading holds at 2 bytes a
 * weight, or null; a folder without weight files (config.json alone: its memory is estimated, and
 * refused, before loading says what is missing) as its torch_dtype says.
 */
export function folderHalfDtype(dir: string): HalfDtype | null {
  let files: string[];
  try {
    files = isFolder(dir) ? folderWeights(dir).files : [dir];
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
    const dtype = (readHfConfig(dir) as { torch_dtype?: unknown }).torch_dtype;
    return dtype === 'bfloat16' || dtype === 'float16' ? dtype : null;
  }
  for (const file of files) {
    const fd = openSync(file, 'r');
    try {
      for (const [, e] of readSafetensorsHeader(file, fd).entries) {
        if (e.shape.length === 2 && (e.dtype === 'BF16' || e.dtype === 'F16')) return e.dtype === 'BF16' ? 'bfloat16' : 'float16';
      }
    } finally {
      closeSync(fd);
    }
  }
  return null;
}

export interface InferenceFolder {
  model: Module;
  spec: ModelSpec;
  /** The float32 weights were placed in huge-page blocks (generate/weight_pages.ts need not move them). */
  inHugePages: boolean;
  /** With `quantize`: the weights' bytes it quantized, as float32 and as blocks. */
  quantized?: { bytesBefore: number; bytesAfter: number };
}

/** How a folder's matrices are held (the header says what each does). */
export type HeldMatrices = 'bf16' | 'as-read' | 'float32';

/**
 * The folder's model (or a single safetensors file's, given its `spec`: one smolcluster saved), its
 * matrices held as `matrices` says (the header); every other weight float32. The Llama family's and GPT-2's (whose models hold no buffer a file would fill; GPT-2's
 * Conv1D matrices, stored transposed, are read whole, one at a time); others: loadPretrained.
 * `quantize` takes the Llama family only (nn/quantize_model.ts).
 */
export function loadFolderForInference(dir: string, o: { matrices: HeldMatrices; quantize?: QuantScheme; spec?: ModelSpec }): InferenceFolder {
  const spec = o.spec ?? specFromFolder(dir);
  if (spec.type !== 'llama' && spec.type !== 'gpt2') throw new CheckpointError(dir, `holds a ${spec.type} model; loadFolderForInference reads the Llama family's and GPT-2's`);
  const model = buildDeferred(() => withoutRandomInit(() => createModel(spec, 0)));
  if (model.namedBufferStorages().length > 0) throw new CheckpointError(dir, 'the model has buffers a file fills: loadPretrained reads them');
  const ranges = new SafetensorsRanges(dir, model, spec);
  try {
    const params = model.namedParameters();
    if (o.quantize && spec.type !== 'llama') throw new CheckpointError(dir, `holds a ${spec.type} model; --quantize takes the Llama family`);
    const plan = o.quantize ? quantizationPlan(model, spec as LlamaSpec, o.quantize) : new Map<string, QuantType | null>();
    const shapes = params.map(([name, p]) => [name, p.shape] as const);
    // The blocks in huge pages, as a GGUF file's are for a generator (tensor/huge_page_block.ts HugePageBytes).
    const places = plan.size > 0 ? HugePageBytes.on(CPU, planBytes(shapes, plan, HugePageBytes.span).bytesAfter) : null;
    const held = new Map(params.map(([name, p]) => {
      const type = plan.get(name);
      if (type) return [name, quantizedMatrix(ranges, name, p, type, places)];
      return [name, p.ndim === 2 ? heldMatrix(ranges, name, p, o.matrices) : null];
    }));
    model.freeze((name) => held.get(name) != null);
    const floats = params.filter(([name]) => !held.get(name));
    const total = floats.reduce((n, [, p]) => n + p.size, 0);
    const blocks = HugePageBlocks.on(CPU, 'float32');
    for (const [name, p] of params) {
      const storage = held.get(name);
      if (storage) {
        p.holdFrozen(storage);
        continue;
      }
      const place = blocks ? blocks.take(p.size, total) : deviceMemory(CPU).alloc('float32', p.size);
      fill(ranges, name, p, place);
      p.bind(place, null);
    }
    model.eval();
    return { model, spec, inHugePages: blocks !== null && floats.length > 0, ...(o.quantize ? { quantized: planBytes(shapes, plan) } : {}) };
  } finally {
    ranges.close();
  }
}

/** Matrix `name` quantized to `type` as it is read: whole rows, about CHUNK elements at a time, each made into its blocks (in `places` where given). */
function quantizedMatrix(ranges: SafetensorsRanges, name: string, p: Tensor, type: QuantType, places: HugePageBytes | null): Storage {
  const [rows, cols] = p.shape;
  const bytes = quantBytes(type, rows, cols, name);
  const out = places ? places.take(bytes) : new Uint8Array(bytes);
  const step = Math.max(1, Math.floor(CHUNK / cols));
  for (let r = 0; r < rows; r += step) {
    const n = Math.min(step, rows - r);
    quantizeOnCpu(type, ranges.read(name, p.shape, r * cols, (r + n) * cols), n, cols, out.subarray(quantBytes(type, r, cols), quantBytes(type, r + n, cols)));
  }
  return deviceMemory(CPU).fromHost(out, type);
}

/** Matrix `name`'s storage where `matrices` holds it in 16 bits (null: float32, filled in place). */
function heldMatrix(ranges: SafetensorsRanges, name: string, p: Tensor, matrices: HeldMatrices): Storage | null {
  if (matrices === 'float32') return null;
  const bf16 = ranges.bf16Bits(name) ?? (matrices === 'bf16' ? roundedToBf16(ranges, name, p) : null);
  if (bf16) return deviceMemory(CPU).fromHost(bf16);
  // fp32 generation of an F16 matrix: the file's bytes are its f16 blocks, where its rows are whole ones.
  const f16 = heldAsF16Blocks(p.shape) ? ranges.f16Bits(name) : null;
  return f16 ? deviceMemory(CPU).fromHost(new Uint8Array(f16.buffer, f16.byteOffset, f16.byteLength), 'f16') : null;
}

/**
 * Parameter `name` rounded to bfloat16 (to nearest even, as torch's `.to(torch.bfloat16)`), read
 * CHUNK elements at a time: a matrix the files hold in F32 or F16, under bf16 generation.
 */
function roundedToBf16(ranges: SafetensorsRanges, name: string, p: Tensor): Uint16Array {
  const bits = new Uint16Array(p.size);
  for (let from = 0; from < p.size; from += CHUNK) toBf16BitsInto(ranges.read(name, p.shape, from, Math.min(p.size, from + CHUNK)), bits, from);
  return bits;
}

/** `place` filled with parameter `name`'s values, CHUNK elements at a time. */
function fill(ranges: SafetensorsRanges, name: string, p: Tensor, place: Storage): void {
  for (let from = 0; from < p.size; from += CHUNK) {
    const to = Math.min(p.size, from + CHUNK);
    place.write(ranges.read(name, p.shape, from, to), from);
  }
}
