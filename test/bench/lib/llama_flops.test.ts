/**
 * The MFU numerator of bench:models' llama rows: SmolLM2-135M's matmul weights are its published
 * parameter count (134,515,008, transformers' num_parameters) less its RMSNorm weights, the tied
 * head counted once as a product; attention adds 12 · layers · window · heads · headDim per token.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { llamaMatmulParams, llamaTrainingFlopsPerToken } from '../../../bench/lib/llama_flops.js';
import { defaultSpec, type LlamaSpec } from '../../../src/nn/models/index.js';

const smollm2 = defaultSpec('smollm2-135m', [256], 49152) as LlamaSpec;

describe('bench/lib/llama_flops: training FLOPs per token', () => {
  it('SmolLM2-135M: matmul parameters = published count − norm weights', () => {
    const norms = smollm2.layers * 2 * smollm2.width + smollm2.width;
    assert.equal(llamaMatmulParams(smollm2), 134_515_008 - norms);
  });

  it('adds attention over the window: 12 · layers · T · heads · headDim', () => {
    const at = (t: number): number => llamaTrainingFlopsPerToken(smollm2, t);
    assert.equal(at(256), 6 * 134_479_872 + 12 * 30 * 256 * 9 * 64);
    assert.equal(at(512) - at(256), 12 * 30 * 256 * 9 * 64);
  });

  it('an untied head is still one product (the embedding lookup is not a matmul)', () => {
    const untied = { ...smollm2, tieEmbeddings: false };
    assert.equal(llamaMatmulParams(untied), llamaMatmulParams(smollm2));
  });
});
