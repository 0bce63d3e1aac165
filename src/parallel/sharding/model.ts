/**
 * What a tensor-parallel model is: a Module (arena, optimizer, checkpoints as usual) whose forward
 * is async, since the sums over its group happen between its ops (tape.ts says why).
 */
import type { ModelSpec } from '../../nn/models/index.js';
import { Module } from '../../nn/module.js';
import { embedding } from '../../tensor/ops/embedding.js';
import { Tensor } from '../../tensor/tensor.js';
import type { TensorParallelTape } from './tape.js';

export abstract class TensorParallelModule extends Module {
  constructor(readonly tpRank: number, readonly tpSize: number) {
    super();
  }

  /** The model's output, with the tape's cuts and sums; the tape's backward differentiates it. */
  abstract forwardParallel(x: Tensor, tape: TensorParallelTape): Promise<Tensor>;

  forward(x: Tensor): Tensor {
    throw new Error(`a tensor-parallel model (rank ${this.tpRank} of ${this.tpSize}) sums over its group between ops: call forwardParallel (input ${x.toString()})`);
  }
}

/**
 * A replicated embedding table whose values come from the full model (load.ts): nn's Embedding
 * draws a random table first, which costs vocab×width normals for nothing here.
 */
export class ReplicatedEmbedding extends Module {
  readonly weight: Tensor;

  constructor(vocab: number, dim: number) {
    super();
    this.weight = this.registerParameter('weight', Tensor.zeros([vocab, dim]));
  }

  lookup(ids: Int32Array, idsShape: readonly number[]): Tensor {
    return embedding(this.weight, ids, idsShape);
  }

  forward(x: Tensor): Tensor {
    return this.lookup(Int32Array.from(x.values()), x.shape);
  }
}

/**
 * Refuses a model that does not split T ways: its heads (each rank takes whole heads) and its MLP
 * width must divide by T, and dropout must be 0 (the ranks' dropout streams would draw different
 * masks for their different heads).
 */
export function checkTensorParallel(spec: ModelSpec, size: number, modelName: string = spec.type): void {
  const flag = `--tensor-parallel ${size}`;
  if (spec.type !== 'gpt2' && spec.type !== 'bert') throw new Error(`${flag}: tensor parallelism splits GPT-2 and BERT models, not ${modelName}`);
  if (!Number.isInteger(size) || size < 1) throw new Error(`${flag}: the degree must be a positive integer`);
  if (spec.heads % size !== 0) throw new Error(`${flag}: ${modelName} has ${spec.heads} attention heads, which do not divide by ${size}`);
  const mlp = spec.type === 'gpt2' ? 4 * spec.width : spec.intermediate;
  if (mlp % size !== 0) throw new Error(`${flag}: ${modelName}'s MLP width ${mlp} does not divide by ${size}`);
  if (spec.dropout > 0) throw new Error(`${flag}: ${modelName} has dropout ${spec.dropout}; tensor parallelism needs dropout 0 (each rank would draw its own masks)`);
}
