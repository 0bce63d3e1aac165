/**
 * A Hugging Face folder's model loaded for inference with each weight held once, in the form it
 * is used in, never beside a second copy (issue 50: loadPretrained read the whole file, widened it
 * into a float32 arena, generate then copied that into huge pages and, in bf16, held a cast and its
 * packed copy beside each matrix: 9–11 bytes a parameter measured for the Qwen2.5-0.5B shape):
 * - with `bf16` (bf16 generation), every matrix is a frozen bfloat16 parameter: one the files hold
 *   in BF16 bound to the file's bytes, mapped read-only where the host can map them
 *   (safetensors_ranges.ts bf16Bits: 2 bytes a weight, no copy in the heap; a mapped weight must
 *   never be written), one they hold in F32 or F16 rounded at load, to nearest even as torch's
 *   `.to(torch.bfloat16)` (2 bytes a weight in the heap, where the float32 weight and its held cast
 *   took 6 and its packed copy more: bench:generate-memory's F32 folder in bf16); with
 *   `round: false` (fp32 generation) only the BF16 ones, which fp32 products widen a tile at a time;
 * - every other weight is float32, written straight into its place in huge-page blocks (as
 *   generate/weight_pages.ts would move it there after) by ranges of CHUNK elements, so no tensor
 *   is ever whole in a second buffer.
 * The model is built deferred (as a GGUF file's or an MLX folder's): nothing is allocated before a
 * parameter is bound. The folder's tensors are checked against the model's names and shapes from
 * the headers before anything is read (SafetensorsRanges).
 */
import { closeSync, openSync } from 'node:fs';
import { buildDeferred } from '../../tensor/deferred_init.js';
import { HugePageBlocks } from '../../tensor/huge_page_block.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import { CPU, type Storage, deviceMemory } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { toBf16BitsInto } from '../../util/float_formats.js';
import { CheckpointError } from '../checkpoint.js';
import { type ModelSpec, createModel } from '../models/index.js';
import type { Module } from '../module.js';
import { readHfConfig, specFromFolder } from './hf_folder.js';
import { folderWeights } from './hf_weights.js';
import { readSafetensorsHeader } from './safetensors.js';
import { SafetensorsRanges } from './safetensors_ranges.js';

/** Elements read and widened at a time (16 MB of float32): the only transient buffer of a load. */
const CHUNK = 1 << 22;

/**
 * Whether a folder's files hold a matrix in BF16 (from their headers: no weight is read); a folder
 * without weight files (config.json alone: its memory is estimated, and refused, before loading
 * says what is missing) as its torch_dtype says.
 */
export function folderHasBf16Matrices(dir: string): boolean {
  let files: string[];
  try {
    files = folderWeights(dir).files;
  } catch (e) {
    if (e instanceof CheckpointError) return (readHfConfig(dir) as { torch_dtype?: unknown }).torch_dtype === 'bfloat16';
    throw e;
  }
  for (const file of files) {
    const fd = openSync(file, 'r');
    try {
      for (const [, e] of readSafetensorsHeader(file, fd).entries) if (e.dtype === 'BF16' && e.shape.length === 2) return true;
    } finally {
      closeSync(fd);
    }
  }
  return false;
}

export interface InferenceFolder {
  model: Module;
  spec: ModelSpec;
  /** The float32 weights were placed in huge-page blocks (generate/weight_pages.ts need not move them). */
  inHugePages: boolean;
}

/**
 * The folder's model: with `bf16`, its matrices held as bfloat16 (frozen) — with `round: false`
 * only those the files hold in BF16 (fp32 generation: its products widen them tile by tile,
 * ops/linear_bf16_weight.ts), the others float32; every other weight float32. The Llama family's (whose models hold no buffer a file would fill); others: loadPretrained.
 */
export function loadFolderForInference(dir: string, o: { bf16: boolean; round?: boolean }): InferenceFolder {
  const spec = specFromFolder(dir);
  if (spec.type !== 'llama') throw new CheckpointError(dir, `holds a ${spec.type} model; loadFolderForInference reads the Llama family's`);
  const model = buildDeferred(() => withoutRandomInit(() => createModel(spec, 0)));
  if (model.namedBufferStorages().length > 0) throw new CheckpointError(dir, 'the model has buffers a file fills: loadPretrained reads them');
  const ranges = new SafetensorsRanges(dir, model, spec);
  try {
    const params = model.namedParameters();
    const bits = new Map(params.map(([name, p]) => [name, o.bf16 && p.ndim === 2 ? ranges.bf16Bits(name) ?? (o.round === false ? null : roundedToBf16(ranges, name, p)) : null]));
    model.freeze((name) => bits.get(name) != null);
    const floats = params.filter(([name]) => !bits.get(name));
    const total = floats.reduce((n, [, p]) => n + p.size, 0);
    const blocks = HugePageBlocks.on(CPU, 'float32');
    for (const [name, p] of params) {
      const held = bits.get(name);
      if (held) {
        p.holdFrozen(deviceMemory(CPU).fromHost(held));
        continue;
      }
      const place = blocks ? blocks.take(p.size, total) : deviceMemory(CPU).alloc('float32', p.size);
      fill(ranges, name, p, place);
      p.bind(place, null);
    }
    model.eval();
    return { model, spec, inHugePages: blocks !== null && floats.length > 0 };
  } finally {
    ranges.close();
  }
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
