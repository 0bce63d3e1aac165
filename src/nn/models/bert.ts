import { add, geluErf } from '../../tensor/ops/elementwise.js';
import { lastUse } from '../../tensor/handover.js';
import { linear } from '../../tensor/ops/matmul.js';
import { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../util/rng.js';
import { Dropout } from '../layers/activation.js';
import { mergeHeads, scaledDotProductAttention, splitHeads } from '../layers/attention.js';
import { Embedding, tokenIds } from '../layers/embedding.js';
import { fillConst, fillNormal } from '../layers/init_fill.js';
import { Linear } from '../layers/linear.js';
import { LayerNorm } from '../layers/norm.js';
import { type MaybeAsync, eachInTurn, runModule, settled, then } from '../layers/maybe_async.js';
import { type Projections, wholeProjections } from '../layers/projections.js';
import { Sequential } from '../layers/sequential.js';
import type { ModelLayer } from '../layer_list.js';
import { Module } from '../module.js';

/**
 * BERT (Devlin et al. 2018) with a masked-LM head: post-LayerNorm encoder layers, learned positions,
 * token-type embeddings (all inputs are segment 0), bidirectional attention, and a prediction head
 * whose decoder is tied to the word embeddings. Module names follow Hugging Face's BertForMaskedLM
 * (bert.embeddings.word_embeddings, bert.encoder.layer.0.attention.self.query, cls.predictions...).
 * The activation is the exact (erf) GELU, HF's hidden_act "gelu".
 *
 * Tensor parallelism swaps Megatron's split projections in (layers/projections.ts): query, key,
 * value and the intermediate dense column-parallel (H/T heads per rank), both output denses
 * row-parallel (summed over the group before the residual and the post-LayerNorm). The forward is
 * written once: synchronous on one rank, awaiting the group's sums when split (layers/maybe_async.ts).
 */
export interface BertSpec {
  type: 'bert';
  vocabSize: number;
  /** max_position_embeddings: the longest sequence the model accepts. */
  context: number;
  layers: number;
  width: number;
  heads: number;
  /** Feed-forward width (intermediate_size), 4 × width in the published models. */
  intermediate: number;
  dropout: number;
}

const LN_EPS = 1e-12;

class BertEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  private readonly position_embeddings: Embedding;
  private readonly token_type_embeddings: Embedding;
  private readonly LayerNorm: LayerNorm;

  constructor(private readonly spec: BertSpec, rng: Rng, private readonly drop: Dropout) {
    super();
    this.word_embeddings = this.registerModule('word_embeddings', new Embedding(spec.vocabSize, spec.width, rng));
    this.position_embeddings = this.registerModule('position_embeddings', new Embedding(spec.context, spec.width, rng));
    this.token_type_embeddings = this.registerModule('token_type_embeddings', new Embedding(2, spec.width, rng));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(spec.width, LN_EPS));
  }

  forward(ids: Tensor): Tensor {
    if (ids.ndim !== 2) throw new Error(`bert: expected token ids [N, T], got [${ids.shape.join(', ')}]`);
    const [N, T] = ids.shape;
    if (T > this.spec.context) throw new Error(`bert: sequence length ${T} exceeds the model's context ${this.spec.context} (--context)`);
    const words = this.word_embeddings.lookup(tokenIds(ids), [N, T]);
    const positions = this.position_embeddings.lookup(Int32Array.from({ length: T }, (_, i) => i), [T]);
    const segment = this.token_type_embeddings.lookup(new Int32Array(1), [1]);
    return this.drop.forward(this.LayerNorm.forward(add(add(words, positions), segment)));
  }
}

/** Self-attention (query/key/value), dropout on its probabilities while training (HF's attention_probs_dropout_prob). */
class BertSelfAttention extends Module {
  private readonly query: Module;
  private readonly key: Module;
  private readonly value: Module;
  private readonly heads: number;

  constructor(spec: BertSpec, rng: Rng, private readonly drop: Dropout, split: Projections) {
    super();
    this.heads = spec.heads / split.size;
    this.query = this.registerModule('query', split.columns(spec.width, spec.width, rng));
    this.key = this.registerModule('key', split.columns(spec.width, spec.width, rng));
    this.value = this.registerModule('value', split.columns(spec.width, spec.width, rng));
  }

  forward(x: Tensor): Tensor {
    const h = this.heads;
    const q = splitHeads(this.query.forward(x), h);
    const k = splitHeads(this.key.forward(x), h);
    const v = splitHeads(this.value.forward(x), h);
    // q, k, v are fresh copies (splitHeads permutes) read by the attention only.
    return mergeHeads(scaledDotProductAttention(lastUse(q), lastUse(k), lastUse(v), false, this.drop.forAttention()));
  }
}

/** dense → dropout → LayerNorm(· + residual): HF's BertSelfOutput and BertOutput. */
class BertResidualOutput extends Module {
  private readonly dense: Module;
  private readonly LayerNorm: LayerNorm;

  constructor(inF: number, width: number, rng: Rng, private readonly drop: Dropout, split: Projections) {
    super();
    this.dense = this.registerModule('dense', split.rows(inF, width, rng));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(width, LN_EPS));
  }

  forward(x: Tensor): Tensor {
    throw new Error(`BertResidualOutput needs the residual: call apply() (got ${x.toString()})`);
  }

  apply(x: Tensor, residual: Tensor): MaybeAsync<Tensor> {
    return then(runModule(this.dense, x), (y) => this.LayerNorm.forward(add(this.drop.forward(y), residual)));
  }
}

class BertAttention extends Module {
  private readonly self: BertSelfAttention;
  private readonly output: BertResidualOutput;

  constructor(spec: BertSpec, rng: Rng, drop: Dropout, split: Projections) {
    super();
    this.self = this.registerModule('self', new BertSelfAttention(spec, rng, drop, split));
    this.output = this.registerModule('output', new BertResidualOutput(spec.width, spec.width, rng, drop, split));
  }

  run(x: Tensor): MaybeAsync<Tensor> {
    return this.output.apply(this.self.forward(x), x);
  }

  forward(x: Tensor): Tensor {
    return settled(this.run(x), 'bert attention');
  }
}

class BertIntermediate extends Module {
  private readonly dense: Module;

  constructor(spec: BertSpec, rng: Rng, split: Projections) {
    super();
    this.dense = this.registerModule('dense', split.columns(spec.width, spec.intermediate, rng));
  }

  forward(x: Tensor): Tensor {
    return geluErf(this.dense.forward(x));
  }
}

class BertLayer extends Module {
  private readonly attention: BertAttention;
  private readonly intermediate: BertIntermediate;
  private readonly output: BertResidualOutput;

  constructor(spec: BertSpec, rng: Rng, drop: Dropout, split: Projections) {
    super();
    this.attention = this.registerModule('attention', new BertAttention(spec, rng, drop, split));
    this.intermediate = this.registerModule('intermediate', new BertIntermediate(spec, rng, split));
    this.output = this.registerModule('output', new BertResidualOutput(spec.intermediate, spec.width, rng, drop, split));
  }

  run(x: Tensor): MaybeAsync<Tensor> {
    return then(this.attention.run(x), (a) => this.output.apply(lastUse(this.intermediate.forward(a)), a));
  }

  forward(x: Tensor): Tensor {
    return settled(this.run(x), 'bert layer');
  }
}

class BertModel extends Module {
  readonly embeddings: BertEmbeddings;
  readonly encoder: BertEncoder;

  constructor(spec: BertSpec, rng: Rng, drop: Dropout, split: Projections) {
    super();
    this.embeddings = this.registerModule('embeddings', new BertEmbeddings(spec, rng, drop));
    this.encoder = this.registerModule('encoder', new BertEncoder(spec, rng, drop, split));
  }

  run(ids: Tensor): MaybeAsync<Tensor> {
    return this.encoder.run(this.embeddings.forward(ids));
  }

  forward(ids: Tensor): Tensor {
    return settled(this.run(ids), 'bert');
  }
}

class BertEncoder extends Module {
  readonly layer: Sequential;

  constructor(spec: BertSpec, rng: Rng, drop: Dropout, split: Projections) {
    super();
    this.layer = this.registerModule('layer', new Sequential(...Array.from({ length: spec.layers }, () => new BertLayer(spec, rng, drop, split))));
  }

  run(x: Tensor): MaybeAsync<Tensor> {
    return eachInTurn(this.layer.layers as BertLayer[], x, (layer, y) => layer.run(y));
  }

  forward(x: Tensor): Tensor {
    return settled(this.run(x), 'bert encoder');
  }
}

/** cls.predictions.transform: dense → GELU → LayerNorm. */
class BertPredictionTransform extends Module {
  private readonly dense: Linear;
  private readonly LayerNorm: LayerNorm;

  constructor(spec: BertSpec, rng: Rng) {
    super();
    this.dense = this.registerModule('dense', new Linear(spec.width, spec.width, rng));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(spec.width, LN_EPS));
  }

  forward(x: Tensor): Tensor {
    return this.LayerNorm.forward(geluErf(this.dense.forward(x)));
  }
}

/** cls.predictions: transform, then the decoder tied to the word embeddings plus its own bias. */
class BertLMPredictionHead extends Module {
  private readonly transform: BertPredictionTransform;
  private readonly bias: Tensor;

  constructor(spec: BertSpec, rng: Rng, private readonly embeddings: Embedding) {
    super();
    this.bias = this.registerParameter('bias', Tensor.zeros([spec.vocabSize]));
    this.transform = this.registerModule('transform', new BertPredictionTransform(spec, rng));
  }

  forward(x: Tensor): Tensor {
    return this.logits(x, this.embeddings.weight);
  }

  /** The decoder with the word embeddings given (a pipeline stage's copy of the tied weight). */
  logits(x: Tensor, wordEmbeddings: Tensor): Tensor {
    return linear(lastUse(this.transform.forward(x)), wordEmbeddings, this.bias);
  }
}

class BertOnlyMLMHead extends Module {
  readonly predictions: BertLMPredictionHead;

  constructor(spec: BertSpec, rng: Rng, embeddings: Embedding) {
    super();
    this.predictions = this.registerModule('predictions', new BertLMPredictionHead(spec, rng, embeddings));
  }

  forward(x: Tensor): Tensor {
    return this.predictions.forward(x);
  }
}

/** BertForMaskedLM: token ids [N, T] → logits [N, T, vocab] at every position. */
export class BertForMaskedLM extends Module {
  private readonly bert: BertModel;
  private readonly cls: BertOnlyMLMHead;
  private readonly drop: Dropout;

  /** `split`: whole projections (one rank), or a tensor-parallel group's shards of them. */
  constructor(readonly spec: BertSpec, seed: number, split: Projections = wholeProjections) {
    super();
    if (spec.width % spec.heads !== 0) throw new Error(`bert: width ${spec.width} is not divisible by ${spec.heads} heads`);
    const rng = Rng.derive(seed, 0x42455254);
    const drop = this.drop = this.registerModule('drop', new Dropout(spec.dropout, Rng.derive(seed, 0x42455254, 1)));
    this.bert = this.registerModule('bert', new BertModel(spec, rng, drop, split));
    this.cls = this.registerModule('cls', new BertOnlyMLMHead(spec, rng, this.bert.embeddings.word_embeddings));
    initBert(this, rng);
  }

  /** The logits, once the group's sums are in (split projections); at once on one rank. */
  run(ids: Tensor): MaybeAsync<Tensor> {
    return then(this.bert.run(ids), (h) => this.cls.forward(h));
  }

  forward(ids: Tensor): Tensor {
    return settled(this.run(ids), 'bert');
  }

  forwardAsync(ids: Tensor): Promise<Tensor> {
    return Promise.resolve(this.run(ids));
  }

  /** The embeddings, each encoder layer, then the MLM head tied to the word embeddings (one layer each). */
  layerList(): ModelLayer[] {
    const drop: [string, Module] = ['drop', this.drop];
    const embeddings = this.bert.embeddings;
    const layers = (this.bert.encoder.layer.layers as BertLayer[]).map((layer, i): ModelLayer => ({
      name: `bert.encoder.layer.${i}`, modules: [[`bert.encoder.layer.${i}`, layer], drop], forward: (x) => layer.run(x),
    }));
    const head = this.cls.predictions;
    return [
      { name: 'bert.embeddings', modules: [['bert.embeddings', embeddings], drop], forward: (ids) => embeddings.forward(ids) },
      ...layers,
      {
        name: 'cls.predictions', modules: [['cls.predictions', head]], tied: { name: 'bert.embeddings.word_embeddings.weight', tensor: embeddings.word_embeddings.weight },
        forward: (x, tied) => head.logits(x, tied!),
      },
    ];
  }
}

/** HF's _init_weights: N(0, 0.02) for linear and embedding weights, zero biases, LayerNorm (1, 0). */
function initBert(model: Module, rng: Rng): void {
  for (const [name, p] of model.namedParameters()) {
    if (name.includes('LayerNorm')) continue;
    if (name.endsWith('bias')) fillConst(p, 0);
    else fillNormal(p, rng, 0.02);
  }
}

export function buildBert(spec: BertSpec, seed: number): BertForMaskedLM {
  return new BertForMaskedLM(spec, seed);
}
