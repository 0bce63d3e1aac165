import { add, affine } from '../../tensor/ops/elementwise.js';
import { reshape } from '../../tensor/ops/layout.js';
import { linear } from '../../tensor/ops/matmul.js';
import { autocast, lowersToBf16 } from '../../tensor/ops/autocast.js';
import { sharedBf16, toBf16ForOneOp } from '../../tensor/ops/cast.js';
import { lastUse, mayRelease, releaseValues } from '../../tensor/handover.js';
import { activeRecycler } from '../../tensor/recycler.js';
import { isQuantType } from '../../tensor/quant/formats.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import { Dropout } from '../layers/activation.js';
import { fillConst } from '../layers/init_fill.js';
import { Linear } from '../layers/linear.js';
import { FrozenBaseLinear } from './frozen_base.js';
import { loraUpdate } from './lora_update.js';

/** A LoRA adapter's shape: rank r, scale alpha / r, dropout on its input (PEFT's LoraConfig). */
export interface LoraShape {
  rank: number;
  alpha: number;
  dropout: number;
}

/**
 * LoRA (Hu et al. 2021) over a Linear layer: y = x Wᵀ + b + (alpha / r) · B A dropout(x), with W
 * and b the base layer's, frozen, and A [r, in], B [out, r] trained. A starts as torch's Linear
 * default (PEFT's kaiming-uniform with a = √5), B at zero, so the wrapped layer starts equal to the
 * base. The base keeps its parameter names (frozen_base.ts) and the adapter's are PEFT's
 * (`….lora_A.weight`).
 */
export class LoraLinear extends FrozenBaseLinear {
  readonly lora_A: Linear;
  readonly lora_B: Linear;
  readonly scaling: number;
  private readonly drop: Dropout | null;

  constructor(base: Linear, readonly shape: LoraShape, rng: Rng, dropoutRng: Rng) {
    super(base);
    this.lora_A = this.registerModule('lora_A', new Linear(base.inFeatures, shape.rank, rng, { bias: false }));
    this.lora_B = this.registerModule('lora_B', new Linear(shape.rank, base.outFeatures, rng, { bias: false }));
    fillConst(this.lora_B.weight, 0);
    this.scaling = shape.alpha / shape.rank;
    this.drop = shape.dropout > 0 ? this.registerModule('lora_dropout', new Dropout(shape.dropout, dropoutRng)) : null;
  }

  /**
   * Both branches read x through views of their own: x may come handed over (lastUse) to the one op
   * that reads it, and under bf16 that op would give its values back before the other branch reads them.
   */
  forward(x: Tensor): Tensor {
    // A quantized base (QLoRA) takes float32 x: under a bf16 step its product rounds x and its tiles itself (ops/quant.ts); the adapters follow autocast.
    if (!this.drop && x.dtype === 'float32' && lowersToBf16('linear') && !isQuantType(this.weight.dtype)) return this.forwardBf16(x);
    const bax = this.lora_B.forward(this.lora_A.forward(this.dropped(reshape(x, x.shape))));
    const update = affine(bax, this.scaling);
    const input = reshape(x, x.shape);
    // A base held in bf16 (holdBaseInBf16) multiplies bf16 inputs; the gradient still reaches x in float32.
    const y = linear(this.weight.dtype === 'bfloat16' && input.dtype === 'float32' ? toBf16ForOneOp(input) : input, this.weight, this.bias);
    return this.sum(y, bax, update);
  }

  /**
   * A bf16 step without dropout: x is rounded once (sharedBf16) for the base product and A's, and
   * for the other projections reading the same x (q, k, v); A's backward keeps that cast instead of
   * rounding x again. x handed over (o_proj's input): its float32 values go, the cast is all either
   * backward reads. B's product adds into the base product's memory (lora_update.ts).
   */
  private forwardBf16(x: Tensor): Tensor {
    const xb = sharedBf16(x);
    // The adapter first, as the float32 path orders them (the backward then sums x's gradient in the same order).
    const ax = linear(xb, autocast('linear', this.lora_A.weight)[0], null);
    const [weight] = this.weight.dtype === 'bfloat16' ? [this.weight] : autocast('linear', this.weight);
    const y = linear(xb, weight, this.bias);
    if (activeRecycler() && mayRelease(x)) releaseValues(x, 'LoraLinear');
    return loraUpdate(y, ax, this.lora_B.weight, this.scaling);
  }

  private sum(y: Tensor, bax: Tensor, update: Tensor): Tensor {
    const out = add(y, update);
    // Neither the scale's backward nor the sum's reads its inputs, and no product reads its own output:
    // B A x, the base product and the update go back to the step's buffers now instead of living to
    // its end (three [.., out] tensors a projection). Only into a step's recycler: outside one a
    // device buffer would be disposed, not reused.
    if (activeRecycler()) for (const t of [bax, y, update]) if (mayRelease(lastUse(t))) releaseValues(t, 'LoraLinear');
    return out;
  }

  private dropped(x: Tensor): Tensor {
    return this.drop ? this.drop.forward(x) : x;
  }
}
