/**
 * How much of a LoRA adapter's change a merge keeps once the merged weight is held in a format
 * again (mlx-lm users lost fine-tunes merging into a 4-bit base: the change of many weights is below
 * one quantization step, and requantizing rounds it away). Per adapted layer, Δ = (alpha / r) · B A,
 * W the base as it is held (dequantized), and W' the merged weight W + Δ put in the format and read
 * back: the share kept is ⟨W' − W, Δ⟩ / ⟨Δ, Δ⟩, summed over the layers (1: the change whole; 0:
 * erased). Measured on the first `rows` rows of each layer, so a big model's report costs a few of
 * its rows, not its weights.
 */
import { dequantize, quantize } from '../../tensor/ops/quant.js';
import { type QuantType, isQuantType } from '../../tensor/quant/formats.js';
import { Tensor } from '../../tensor/tensor.js';
import { fromBf16Bits, toBf16Bits } from '../../util/float_formats.js';
import type { Module } from '../module.js';
import { addLoraDelta, loraLayers, readParameterFloat32 } from './apply.js';
import { rowFormatOf } from '../../tensor/quant/rows8.js';
import { type GgufScheme, mostMatricesOf } from '../quantize_model.js';

/** Where a merged weight may be held: a quantized format, bfloat16, or 'base' (each layer's own format). */
export type MergeTarget = QuantType | 'bfloat16' | 'base';

export interface MergeKept {
  target: MergeTarget;
  /** The share of the adapters' change the merge keeps in that form (⟨W' − W, Δ⟩ / ⟨Δ, Δ⟩). */
  kept: number;
}

/** The share of the adapters' change each target keeps, over the first `rows` rows of every adapted layer. */
export async function mergeKept(model: Module, targets: readonly MergeTarget[], rows = 64): Promise<MergeKept[]> {
  const sums = targets.map(() => ({ along: 0, squared: 0 }));
  for (const [, layer] of loraLayers(model)) {
    const [out, inF] = [layer.outFeatures, layer.inFeatures];
    const n = Math.min(rows, out);
    const base = (await readParameterFloat32(layer.weight)).subarray(0, n * inF);
    const [a, b] = [await layer.lora_A.weight.read(), await layer.lora_B.weight.read()] as Float32Array[];
    const delta = new Float32Array(n * inF);
    addLoraDelta(delta, a, b.subarray(0, n * layer.shape.rank), n, inF, layer.shape.rank, layer.scaling);
    const merged = Float32Array.from(base, (w, i) => w + delta[i]);
    for (const [t, target] of targets.entries()) {
      const format = target === 'base' ? layer.weight.dtype : target;
      const held = await heldAs(merged, n, inF, format);
      for (let i = 0; i < delta.length; i++) {
        sums[t].along += (held[i] - base[i]) * delta[i];
        sums[t].squared += delta[i] * delta[i];
      }
    }
  }
  return targets.map((target, t) => ({ target, kept: sums[t].squared > 0 ? sums[t].along / sums[t].squared : 1 }));
}

/** `values` [rows, cols] as a weight held in `format` reads back: quantized and dequantized, rounded to bf16, or as they are. */
async function heldAs(values: Float32Array, rows: number, cols: number, format: string): Promise<Float32Array> {
  if (isQuantType(format)) return await dequantize(quantize(Tensor.fromHost(values, [rows, cols]), format)).read() as Float32Array;
  if (format === 'bfloat16') return Float32Array.from(values, (v) => fromBf16Bits(toBf16Bits(v)));
  return values;
}

/**
 * What a merge keeps of the adapters' change, as one line for stderr: in the format the merged file
 * is written in (`saved`: a GGUF scheme; q4_k_m's matrices are mostly q4_k, q5_k_m's q5_k), in the base's own
 * formats when it is quantized, and in bf16 and Q8_0 beside them. Null where neither the base nor
 * the file is quantized (a float merge keeps the change whole), or the model has no LoRA layers.
 */
export async function describeMergeKept(model: Module, saved: GgufScheme | undefined): Promise<string | null> {
  const layers = loraLayers(model);
  // (A matrix held interleaved for the cpu's products is named by its row format, the file's.)
  const formats = [...new Set(layers.map(([, l]) => l.weight.dtype).filter(isQuantType).map(rowFormatOf))];
  if (layers.length === 0 || (formats.length === 0 && saved === undefined)) return null;
  const file: MergeTarget | null = saved === undefined ? null : mostMatricesOf(saved);
  const targets: MergeTarget[] = [...(formats.length ? ['base' as const] : []), ...(file ? [file] : []), 'bfloat16', 'q8_0'];
  const kept = await mergeKept(model, targets);
  const pct = (target: MergeTarget): string => `${(100 * kept.find((k) => k.target === target)!.kept).toFixed(1)} %`;
  const parts = [
    ...(file ? [`the file's ${file !== saved ? `${file} (most of ${saved})` : file} ${pct(file)}`] : []),
    ...(formats.length ? [`the base's ${formats.join(', ')} ${pct('base')}`] : []),
    `bf16 ${pct('bfloat16')}`, `q8_0 ${pct('q8_0')}`,
  ];
  return `the merged weights are saved in ${saved ?? 'float'}; of the adapters' change they keep: ${parts.join(', ')} (the first 64 rows of each adapted layer)`;
}
