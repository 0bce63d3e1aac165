import { lastUse } from '../../tensor/handover.js';
import { siluMul } from '../../tensor/ops/swiglu.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import { Module } from '../module.js';
import type { Dropout } from './activation.js';
import { Linear } from './linear.js';
import type { FusedMlpParts } from './llama_fused_decode.js';
import { type MaybeAsync, runModule, settled, then } from './maybe_async.js';
import type { Projections } from './projections.js';

/**
 * The SwiGLU MLP (Shazeer 2020; Hugging Face's LlamaMLP): down_proj(silu(gate_proj(x)) · up_proj(x)),
 * no biases. Tensor parallelism splits gate_proj and up_proj by columns (each rank its slice of the
 * inner width, where the gated product is elementwise) and down_proj by rows, summed over the group.
 */
export class LlamaMlp extends Module {
  private readonly gate_proj: Module;
  private readonly up_proj: Module;
  private readonly down_proj: Module;

  constructor(width: number, intermediate: number, rng: Rng, private readonly drop: Dropout, split: Projections) {
    super();
    this.gate_proj = this.registerModule('gate_proj', split.columns(width, intermediate, rng, 1, false));
    this.up_proj = this.registerModule('up_proj', split.columns(width, intermediate, rng, 1, false));
    this.down_proj = this.registerModule('down_proj', split.rows(intermediate, width, rng, false));
  }

  /** x is read by two projections (not handed over); the gated product by down_proj alone (handed over under bf16). */
  run(x: Tensor): MaybeAsync<Tensor> {
    const gated = siluMul(this.gate_proj.forward(x), this.up_proj.forward(x));
    return then(runModule(this.down_proj, lastUse(gated)), (y) => this.drop.forward(y));
  }

  forward(x: Tensor): Tensor {
    return settled(this.run(x), 'llama mlp');
  }

  /** What a fused decode step reads (llama_fused_decode.ts); null where the projections are not whole Linear layers or dropout is live. */
  fusedParts(): FusedMlpParts | null {
    const [gate, up, down] = [this.gate_proj, this.up_proj, this.down_proj];
    if (this.drop.forAttention() || !(gate instanceof Linear && up instanceof Linear && down instanceof Linear)) return null;
    return { gate, up, down };
  }
}
