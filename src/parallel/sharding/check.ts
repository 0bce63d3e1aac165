/**
 * Which models tensor parallelism splits, and what it refuses: the heads (each rank takes whole
 * heads; the llama family's key/value heads too) and the MLP width must divide by T, and dropout must be 0 (the ranks' dropout streams would
 * draw different masks for their different heads).
 */
import type { ModelSpec } from '../../nn/models/index.js';

export function checkTensorParallel(spec: ModelSpec, size: number, modelName: string = spec.type): void {
  const flag = `--tensor-parallel ${size}`;
  if (spec.type !== 'gpt2' && spec.type !== 'bert' && spec.type !== 'llama') {
    throw new Error(`${flag}: tensor parallelism splits GPT-2, BERT and Llama-family models, not ${modelName}`);
  }
  if (!Number.isInteger(size) || size < 1) throw new Error(`${flag}: the degree must be a positive integer`);
  if (spec.heads % size !== 0) throw new Error(`${flag}: ${modelName} has ${spec.heads} attention heads, which do not divide by ${size}`);
  if (spec.type === 'llama' && spec.kvHeads % size !== 0) {
    throw new Error(`${flag}: ${modelName} has ${spec.kvHeads} key/value heads (num_key_value_heads), which do not divide by ${size}`);
  }
  const mlp = spec.type === 'gpt2' ? 4 * spec.width : spec.intermediate;
  if (mlp % size !== 0) throw new Error(`${flag}: ${modelName}'s MLP width ${mlp} does not divide by ${size}`);
  if (spec.dropout > 0) throw new Error(`${flag}: ${modelName} has dropout ${spec.dropout}; tensor parallelism needs dropout 0 (each rank would draw its own masks)`);
}
