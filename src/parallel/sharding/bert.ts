/**
 * BERT (masked LM) split T ways: query, key and value column-parallel (H/T heads per rank), the
 * attention output's dense row-parallel; the intermediate dense column-parallel, the output dense
 * row-parallel. BERT is post-LayerNorm, so f cuts the sublayer's input itself and the layer norm
 * (replicated) follows the sum. Two sums forward and two backward per layer. Embeddings, layer
 * norms, row-parallel biases and the tied prediction head are replicated. Parameter names are
 * nn/models/bert.ts's.
 */
import type { BertSpec } from '../../nn/models/index.js';
import { mergeHeads, scaledDotProductAttention, splitHeads } from '../../nn/layers/attention.js';
import { LayerNorm } from '../../nn/layers/norm.js';
import { Module } from '../../nn/module.js';
import { add, geluErf } from '../../tensor/ops/elementwise.js';
import { linear } from '../../tensor/ops/matmul.js';
import { Tensor } from '../../tensor/tensor.js';
import { ColumnParallelLinear, RowParallelLinear } from './layers.js';
import { ReplicatedEmbedding, TensorParallelModule } from './model.js';
import type { TensorParallelTape } from './tape.js';

const LN_EPS = 1e-12;

/** A module only ever called through its owner's async forward. */
abstract class Part extends Module {
  forward(x: Tensor): Tensor {
    throw new Error(`a tensor-parallel BERT sums over its group: call forwardParallel (input ${x.toString()})`);
  }
}

class Embeddings extends Part {
  readonly word_embeddings: ReplicatedEmbedding;
  readonly position_embeddings: ReplicatedEmbedding;
  readonly token_type_embeddings: ReplicatedEmbedding;
  readonly LayerNorm: LayerNorm;

  constructor(spec: BertSpec) {
    super();
    this.word_embeddings = this.registerModule('word_embeddings', new ReplicatedEmbedding(spec.vocabSize, spec.width));
    this.position_embeddings = this.registerModule('position_embeddings', new ReplicatedEmbedding(spec.context, spec.width));
    this.token_type_embeddings = this.registerModule('token_type_embeddings', new ReplicatedEmbedding(2, spec.width));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(spec.width, LN_EPS));
  }

  embed(ids: Tensor): Tensor {
    const [N, T] = ids.shape;
    const words = this.word_embeddings.lookup(Int32Array.from(ids.values()), [N, T]);
    const positions = this.position_embeddings.lookup(Int32Array.from({ length: T }, (_, i) => i), [T]);
    const segment = this.token_type_embeddings.lookup(new Int32Array(1), [1]);
    return this.LayerNorm.forward(add(add(words, positions), segment));
  }
}

class SelfAttention extends Part {
  readonly query: ColumnParallelLinear;
  readonly key: ColumnParallelLinear;
  readonly value: ColumnParallelLinear;

  constructor(private readonly localHeads: number, spec: BertSpec, size: number) {
    super();
    this.query = this.registerModule('query', new ColumnParallelLinear(spec.width, spec.width, size));
    this.key = this.registerModule('key', new ColumnParallelLinear(spec.width, spec.width, size));
    this.value = this.registerModule('value', new ColumnParallelLinear(spec.width, spec.width, size));
  }

  heads(x: Tensor): Tensor {
    const h = this.localHeads;
    const q = splitHeads(this.query.forward(x), h);
    const k = splitHeads(this.key.forward(x), h);
    const v = splitHeads(this.value.forward(x), h);
    return mergeHeads(scaledDotProductAttention(q, k, v, false));
  }
}

/** dense (row-parallel) → sum over the group → + bias → LayerNorm(· + residual). */
class ResidualOutput extends Part {
  readonly dense: RowParallelLinear;
  readonly LayerNorm: LayerNorm;

  constructor(inF: number, width: number, size: number) {
    super();
    this.dense = this.registerModule('dense', new RowParallelLinear(inF, width, size));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(width, LN_EPS));
  }

  async apply(local: Tensor, residual: Tensor, tape: TensorParallelTape): Promise<Tensor> {
    const summed = await tape.g(this.dense.partial(local));
    return this.LayerNorm.forward(add(add(summed, this.dense.bias), residual));
  }
}

class Attention extends Part {
  readonly self: SelfAttention;
  readonly output: ResidualOutput;

  constructor(spec: BertSpec, size: number) {
    super();
    this.self = this.registerModule('self', new SelfAttention(spec.heads / size, spec, size));
    this.output = this.registerModule('output', new ResidualOutput(spec.width, spec.width, size));
  }
}

class Intermediate extends Part {
  readonly dense: ColumnParallelLinear;

  constructor(spec: BertSpec, size: number) {
    super();
    this.dense = this.registerModule('dense', new ColumnParallelLinear(spec.width, spec.intermediate, size));
  }
}

class Layer extends Part {
  readonly attention: Attention;
  readonly intermediate: Intermediate;
  readonly output: ResidualOutput;

  constructor(spec: BertSpec, size: number) {
    super();
    this.attention = this.registerModule('attention', new Attention(spec, size));
    this.intermediate = this.registerModule('intermediate', new Intermediate(spec, size));
    this.output = this.registerModule('output', new ResidualOutput(spec.intermediate, spec.width, size));
  }

  /** x is a cut leaf; each sublayer's output is cut too (read by the next sublayer's f and its residual). */
  async forwardParallel(x: Tensor, tape: TensorParallelTape): Promise<Tensor> {
    const a = tape.cut(await this.attention.output.apply(this.attention.self.heads(tape.f(x)), x, tape));
    const local = geluErf(this.intermediate.dense.forward(tape.f(a)));
    return tape.cut(await this.output.apply(local, a, tape));
  }
}

class Layers extends Part {
  readonly layers: Layer[];

  constructor(spec: BertSpec, size: number) {
    super();
    this.layers = Array.from({ length: spec.layers }, (_, i) => this.registerModule(String(i), new Layer(spec, size)));
  }
}

class Encoder extends Part {
  readonly layer: Layers;

  constructor(spec: BertSpec, size: number) {
    super();
    this.layer = this.registerModule('layer', new Layers(spec, size));
  }
}

class BertBody extends Part {
  readonly embeddings: Embeddings;
  readonly encoder: Encoder;

  constructor(spec: BertSpec, size: number) {
    super();
    this.embeddings = this.registerModule('embeddings', new Embeddings(spec));
    this.encoder = this.registerModule('encoder', new Encoder(spec, size));
  }
}

class PredictionTransform extends Part {
  readonly dense: ReplicatedLinear;
  readonly LayerNorm: LayerNorm;

  constructor(spec: BertSpec) {
    super();
    this.dense = this.registerModule('dense', new ReplicatedLinear(spec.width, spec.width));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(spec.width, LN_EPS));
  }
}

/** A replicated linear layer whose values come from the full model (load.ts). */
class ReplicatedLinear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(inF: number, outF: number) {
    super();
    this.weight = this.registerParameter('weight', Tensor.zeros([outF, inF]));
    this.bias = this.registerParameter('bias', Tensor.zeros([outF]));
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

class PredictionHead extends Part {
  readonly bias: Tensor;
  readonly transform: PredictionTransform;

  constructor(spec: BertSpec) {
    super();
    this.bias = this.registerParameter('bias', Tensor.zeros([spec.vocabSize]));
    this.transform = this.registerModule('transform', new PredictionTransform(spec));
  }
}

class MlmHead extends Part {
  readonly predictions: PredictionHead;

  constructor(spec: BertSpec) {
    super();
    this.predictions = this.registerModule('predictions', new PredictionHead(spec));
  }
}

/** BertForMaskedLM, rank `rank`'s shard of T: logits [N, T, vocab] (replicated on every rank). */
export class TensorParallelBert extends TensorParallelModule {
  readonly bert: BertBody;
  readonly cls: MlmHead;

  constructor(readonly spec: BertSpec, rank: number, size: number) {
    super(rank, size);
    this.bert = this.registerModule('bert', new BertBody(spec, size));
    this.cls = this.registerModule('cls', new MlmHead(spec));
  }

  async forwardParallel(ids: Tensor, tape: TensorParallelTape): Promise<Tensor> {
    if (ids.ndim !== 2) throw new Error(`bert: expected token ids [N, T], got [${ids.shape.join(', ')}]`);
    if (ids.shape[1] > this.spec.context) throw new Error(`bert: sequence length ${ids.shape[1]} exceeds the model's context ${this.spec.context} (--context)`);
    let x = tape.cut(this.bert.embeddings.embed(ids));
    for (const layer of this.bert.encoder.layer.layers) x = await layer.forwardParallel(x, tape);
    const head = this.cls.predictions;
    const t = head.transform;
    return linear(t.LayerNorm.forward(geluErf(t.dense.forward(x))), this.bert.embeddings.word_embeddings.weight, head.bias);
  }
}
