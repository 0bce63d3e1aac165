/**
 * bench:finetune's children at a size that runs in a second: LoRA steps train exactly the adapters
 * (r × (in + out) per adapted projection) and hold the base in bf16 in the bf16 rows; the MoE
 * steps train every parameter; the wire reading gives 4 bytes per trained value (plus frame
 * headers) per step, for LoRA and for the full model.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LORA, timedTraining, wireBytes } from '../../../bench/lib/finetune_runs.js';
import { createModel, llamaSpec } from '../../../src/nn/models/index.js';
import { setComputePrecision } from '../../../src/tensor/index.js';

const tiny = llamaSpec('llama-tiny', 64, 8);
/** A's r × in and B's out × r for each of q, k, v, o in each layer. */
const kvWidth = tiny.kvHeads * tiny.headDim;
const adapterValues = tiny.layers * LORA.rank * ((tiny.width + tiny.width) * 2 + (tiny.width + kvWidth) * 2);

describe('bench/lib/finetune_runs', () => {
  it('LoRA steps train the adapters only; bf16 holds the base in bf16; the MoE trains everything', () => {
    try {
      const fp32 = timedTraining('lora', tiny, 8, 2, 2, 'fp32', true);
      assert.equal(fp32.trainable, adapterValues);
      assert.equal(fp32.stepMs.length, 2);
      assert.ok(Number.isFinite(fp32.loss) && fp32.tokensPerSec > 0 && fp32.peakRssMB > 0);
      const bf16 = timedTraining('lora', tiny, 8, 2, 1, 'bf16', true);
      assert.match(bf16.detail, /bf16, LoRA r=16 .*base held in bf16/);
      assert.ok(Math.abs(bf16.loss - fp32.loss) < 0.05 * fp32.loss, `bf16 loss ${bf16.loss} near fp32's ${fp32.loss}`);
      const moe = llamaSpec('mixtral-tiny', 64, 8);
      assert.equal(timedTraining('moe', moe, 8, 2, 1, 'fp32', false).trainable, createModel(moe, 0).numParameters());
    } finally {
      setComputePrecision('fp32');
    }
  });

  it('bytes per step of 2 all-reduce ranks: 4 per trained value plus under 1 KB of frames, LoRA and full', async () => {
    const w = await wireBytes('llama-tiny', 64, 3);
    assert.equal(w.lora.trained, adapterValues);
    assert.equal(w.full.trained, createModel(tiny, 0).numParameters());
    for (const run of [w.lora, w.full]) {
      assert.equal(run.bytesPerStep.length, 2);
      for (const b of run.bytesPerStep) assert.ok(b >= 4 * run.trained && b < 4 * run.trained + 1024, `${b} bytes for ${run.trained} values`);
    }
  });
});
