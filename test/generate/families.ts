/** The model variants the generation tests run: GPT-2 and the Llama family's (GQA, Qwen2's biases, Qwen3's norms, Llama 3's rotary scaling, tied). */
import type { CausalLm } from '../../src/generate/generate.js';
import { type LlamaSpec, type ModelSpec, createModel } from '../../src/nn/models/index.js';
import { Rng } from '../../src/util/rng.js';

const llama = (o: Partial<LlamaSpec>): LlamaSpec => ({
  type: 'llama', modelType: 'llama', vocabSize: 61, context: 64, layers: 2, width: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0, ...o,
});

export const FAMILIES: [string, ModelSpec][] = [
  ['gpt2-tiny', { type: 'gpt2', vocabSize: 61, context: 32, layers: 2, width: 32, heads: 4, dropout: 0 }],
  ['llama (4 heads / 2 kv heads, llama3 rope scaling)', llama({ ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 16 } })],
  ['llama tied (3 heads / 1 kv head)', llama({ width: 24, heads: 3, kvHeads: 1, tieEmbeddings: true, ropeTheta: 1e5 })],
  ['qwen2 (q/k/v biases)', llama({ modelType: 'qwen2', qkvBias: true, tieEmbeddings: true, ropeTheta: 1e6 })],
  ['qwen3 (q/k norms, head_dim 16)', llama({ modelType: 'qwen3', qkNorm: true, headDim: 16 })],
];

/** A model of `spec` with every parameter (norms and biases too) moved off its initial value. */
export function randomModel(spec: ModelSpec, seed: number): CausalLm {
  const model = createModel(spec, seed);
  const rng = new Rng(seed + 1);
  for (const [, p] of model.namedParameters()) p.storage.write(Float32Array.from(p.values() as Float32Array, (v) => v + 0.1 * rng.normal()));
  return model.eval() as CausalLm;
}
