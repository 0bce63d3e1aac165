/**
 * Several LoRA adapters over one frozen Linear layer, each row of a batch on its own (vLLM's and
 * S-LoRA's multi-LoRA serving): y = x Wᵀ + b, plus for the rows of a range that runs adapter a,
 * (alpha_a / r_a) · B_a A_a x. W may be quantized (a GGUF file's blocks): the adapters never merge
 * into it, so a small change is not rounded away. Inference only: nothing here trains.
 */
import { add, affine } from '../../tensor/ops/elementwise.js';
import { concat, reshape, slice } from '../../tensor/ops/layout.js';
import { linear } from '../../tensor/ops/matmul.js';
import type { Tensor } from '../../tensor/tensor.js';
import { FrozenBaseLinear } from './frozen_base.js';
import { type AdapterRange, adapterRanges } from './adapter_rows.js';

/** One adapter's matrices for a layer: A [r, in], B [out, r], and its scale alpha / r. */
export interface AdapterSlot {
  readonly a: Tensor;
  readonly b: Tensor;
  readonly scaling: number;
}

export class AdaptersLinear extends FrozenBaseLinear {
  private readonly slots = new Map<string, AdapterSlot>();

  /** Adds adapter `name`'s matrices for this layer (shapes checked by the caller against its file). */
  addSlot(name: string, slot: AdapterSlot): void {
    this.slots.set(name, slot);
  }

  /** The adapters this layer has. */
  get adapters(): string[] {
    return [...this.slots.keys()];
  }

  /** Each product reads x through a view of its own: x may come handed over (lastUse) to the one op that reads it. */
  forward(x: Tensor): Tensor {
    const y = linear(reshape(x, x.shape), this.weight, this.bias);
    const ranges = adapterRanges()?.filter((r) => r.adapter !== null && this.slots.has(r.adapter));
    if (!ranges || ranges.length === 0) return y;
    const rows = x.shape[0];
    if (ranges.length === 1 && ranges[0].start === 0 && ranges[0].end === rows) return add(y, this.update(reshape(x, x.shape), ranges[0]));
    // Rows of no adapter here keep the base product; each adapter's range gets its update.
    const parts: Tensor[] = [];
    let at = 0;
    for (const r of ranges) {
      if (r.start > at) parts.push(slice(y, 0, at, r.start));
      parts.push(add(slice(y, 0, r.start, r.end), this.update(slice(x, 0, r.start, r.end), r)));
      at = r.end;
    }
    if (at < rows) parts.push(slice(y, 0, at, rows));
    return concat(parts, 0);
  }

  private update(x: Tensor, range: AdapterRange): Tensor {
    const slot = this.slots.get(range.adapter!)!;
    return affine(linear(linear(x, slot.a, null), slot.b, null), slot.scaling);
  }
}
