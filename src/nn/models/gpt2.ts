import { add, gelu } from '../../tensor/ops/elementwise.js';
import { lastUse } from '../../tensor/handover.js';
import { linear } from '../../tensor/ops/matmul.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../util/rng.js';
import { Dropout } from '../layers/activation.js';
import { type AttentionCache, cachedAttention, headPositions, mergeHeads, splitQkv } from '../layers/attention.js';
import { packingOf, refusePacking } from '../layers/packed_sequences.js';
import { Embedding, tokenIds } from '../layers/embedding.js';
import { fillConst, fillNormal } from '../layers/init_fill.js';
import { LayerNorm } from '../layers/norm.js';
import { type MaybeAsync, eachInTurn, runModule, settled, then } from '../layers/maybe_async.js';
import { type Projections, wholeProjections } from '../layers/projections.js';
import { Sequential } from '../layers/sequential.js';
import type { ModelLayer } from '../layer_list.js';
import { Module } from '../module.js';
import { inLayerScope } from '../../tensor/layer_recycling.js';

/**
 * GPT-2 (Radford et al. 2019): decoder-only transformer with learned positions, pre-LayerNorm
 * blocks, causal self-attention, tanh-GELU MLP and an LM head tied to the token embedding.
 * Module names follow Hugging Face's GPT2LMHeadModel (transformer.wte, transformer.h.0.attn.c_attn,
 * ...). HF stores its Conv1D weights [in, out]; ours are Linear [out, in] (one fused GEMM with the
 * bias), and interchange/hf_names.ts transposes them on the way in and out. Dropout (resid_pdrop =
 * embd_pdrop = attn_pdrop) applies after the embeddings, to the attention probabilities and to each
 * residual branch, in training only.
 *
 * Tensor parallelism swaps Megatron's split projections in (layers/projections.ts): c_attn and c_fc
 * column-parallel, each c_proj row-parallel (summed over the group), H/T heads per rank. The
 * forward is written once: synchronous on one rank (`forward`), awaiting the group's sums when
 * split (`forwardAsync`; layers/maybe_async.ts).
 */
export interface Gpt2Spec {
  type: 'gpt2';
  vocabSize: number;
  /** Learned positions (n_positions): the longest sequence the model accepts. */
  context: number;
  layers: number;
  width: number;
  heads: number;
  dropout: number;
}

class Gpt2Attention extends Module {
  private readonly c_attn: Module;
  private readonly c_proj: Module;
  private readonly heads: number;

  constructor(spec: Gpt2Spec, rng: Rng, private readonly drop: Dropout, split: Projections) {
    super();
    this.heads = spec.heads / split.size;
    this.c_attn = this.registerModule('c_attn', split.columns(spec.width, 3 * spec.width, rng, 3));
    this.c_proj = this.registerModule('c_proj', split.rows(spec.width, spec.width, rng));
  }

  /** `cache` (generation): the new positions' keys and values join it, and q attends to all of them. */
  run(x: Tensor, cache?: AttentionCache): MaybeAsync<Tensor> {
    const [q, k, v] = splitQkv(this.c_attn.forward(x), this.heads);
    return then(runModule(this.c_proj, mergeHeads(cachedAttention(this, q, k, v, cache, this.drop.forAttention()))), (y) => this.drop.forward(y));
  }

  forward(x: Tensor): Tensor {
    return settled(this.run(x), 'gpt2 attention');
  }
}

class Gpt2Mlp extends Module {
  private readonly c_fc: Module;
  private readonly c_proj: Module;

  constructor(width: number, rng: Rng, private readonly drop: Dropout, split: Projections) {
    super();
    this.c_fc = this.registerModule('c_fc', split.columns(width, 4 * width, rng));
    this.c_proj = this.registerModule('c_proj', split.rows(4 * width, width, rng));
  }

  run(x: Tensor): MaybeAsync<Tensor> {
    return then(runModule(this.c_proj, lastUse(gelu(this.c_fc.forward(x)))), (y) => this.drop.forward(y));
  }

  forward(x: Tensor): Tensor {
    return settled(this.run(x), 'gpt2 mlp');
  }
}

class Gpt2Block extends Module {
  private readonly ln_1: LayerNorm;
  private readonly attn: Gpt2Attention;
  private readonly ln_2: LayerNorm;
  private readonly mlp: Gpt2Mlp;

  constructor(spec: Gpt2Spec, rng: Rng, drop: Dropout, split: Projections) {
    super();
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(spec.width));
    this.attn = this.registerModule('attn', new Gpt2Attention(spec, rng, drop, split));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(spec.width));
    this.mlp = this.registerModule('mlp', new Gpt2Mlp(spec.width, rng, drop, split));
  }

  run(x: Tensor, cache?: AttentionCache): MaybeAsync<Tensor> {
    // Each norm's output feeds one linear only: under bf16 it saves a bf16 copy and lets it go (lastUse).
    return then(this.attn.run(lastUse(this.ln_1.forward(x)), cache), (a) => {
      const h = add(x, a);
      return then(this.mlp.run(lastUse(this.ln_2.forward(h))), (m) => add(h, m));
    });
  }

  forward(x: Tensor): Tensor {
    return settled(this.run(x), 'gpt2 block');
  }
}

/** The transformer body: token ids [N, T] (as floats) → hidden states [N, T, width]. */
class Gpt2Model extends Module {
  readonly wte: Embedding;
  private readonly wpe: Embedding;
  private readonly h: Sequential;
  private readonly ln_f: LayerNorm;

  constructor(private readonly spec: Gpt2Spec, rng: Rng, private readonly drop: Dropout, split: Projections) {
    super();
    this.wte = this.registerModule('wte', new Embedding(spec.vocabSize, spec.width, rng));
    this.wpe = this.registerModule('wpe', new Embedding(spec.context, spec.width, rng));
    this.h = this.registerModule('h', new Sequential(...Array.from({ length: spec.layers }, () => new Gpt2Block(spec, rng, drop, split))));
    this.ln_f = this.registerModule('ln_f', new LayerNorm(spec.width));
  }

  run(ids: Tensor, cache?: AttentionCache): MaybeAsync<Tensor> {
    return then(eachInTurn(this.h.layers as Gpt2Block[], this.embed(ids, cache?.offsets, cache?.positions), (block, x) => inLayerScope(() => block.run(x, cache))), (x) => this.ln_f.forward(x));
  }

  forward(ids: Tensor, cache?: AttentionCache): Tensor {
    return settled(this.run(ids, cache), 'gpt2');
  }

  /**
   * Token plus position embeddings (then dropout): the input of the first block. `offsets`
   * (generation): positions already cached, one number for every row or one per row; `own`: each
   * token's own position [N·T] (packed windows: layers/packed_sequences.ts).
   */
  embed(ids: Tensor, offsets: number | readonly number[] = 0, own?: Int32Array): Tensor {
    const [N, T] = ids.shape;
    if (ids.ndim !== 2) throw new Error(`gpt2: expected token ids [N, T], got [${ids.shape.join(', ')}]`);
    const starts = typeof offsets === 'number' ? [offsets] : offsets;
    const longest = Math.max(...starts) + T;
    if (longest > this.spec.context) throw new Error(`gpt2: sequence length ${longest} exceeds the model's context ${this.spec.context} (--context)`);
    const positions = own ? this.wpe.lookup(own, [N, T])
      : starts.length === 1 || starts.every((o) => o === starts[0])
      ? this.wpe.lookup(Int32Array.from({ length: T }, (_, i) => starts[0] + i), [T])
      : this.wpe.lookup(Int32Array.from({ length: N * T }, (_, j) => starts[Math.floor(j / T)] + (j % T)), [N, T]);
    return this.drop.forward(add(this.wte.lookup(tokenIds(ids), [N, T]), positions));
  }

  /** The embedding layer's forward: packed windows are refused there (layers/packed_sequences.ts). */
  private embedLayer(ids: Tensor, offsets?: number | readonly number[]): Tensor {
    refusePacking(ids, 'gpt2');
    return this.embed(ids, offsets);
  }

  /** The embeddings, each block, then the final norm with the head tied to wte (one layer each). */
  layerList(prefix: string): ModelLayer[] {
    const drop: [string, Module] = ['drop', this.drop];
    const blocks = (this.h.layers as Gpt2Block[]).map((block, i): ModelLayer => ({
      name: `${prefix}h.${i}`, modules: [[`${prefix}h.${i}`, block], drop], forward: (x, _tied, cache) => block.run(x, cache),
    }));
    const ln_f = this.ln_f;
    return [
      { name: `${prefix}wte+wpe`, modules: [[`${prefix}wte`, this.wte], [`${prefix}wpe`, this.wpe], drop], forward: (ids, _tied, cache) => this.embedLayer(ids, cache?.offsets) },
      ...blocks,
      {
        name: `${prefix}ln_f+lm_head`, modules: [[`${prefix}ln_f`, ln_f]], tied: { name: `${prefix}wte.weight`, tensor: this.wte.weight },
        forward: (x, tied) => linear(ln_f.forward(x), tied!, null),
      },
    ];
  }
}

/** GPT2LMHeadModel: logits [N, T, vocab] with the head tied to transformer.wte. */
export class Gpt2LMHead extends Module {
  readonly transformer: Gpt2Model;

  /** `split`: whole projections (one rank), or a tensor-parallel group's shards of them. */
  constructor(readonly spec: Gpt2Spec, seed: number, split: Projections = wholeProjections) {
    super();
    if (spec.width % spec.heads !== 0) throw new Error(`gpt2: width ${spec.width} is not divisible by ${spec.heads} heads`);
    const rng = Rng.derive(seed, 0x475054);
    // One dropout module shared by every site; registered here so train()/eval() reach it.
    const drop = this.registerModule('drop', new Dropout(spec.dropout, Rng.derive(seed, 0x475054, 1)));
    this.transformer = this.registerModule('transformer', new Gpt2Model(spec, rng, drop, split));
    initGpt2(this, spec, rng);
  }

  /** The logits, once the group's sums are in (split projections); at once on one rank. `cache`: generate/kv_cache.ts; ids marked as packed windows attend within each packed sequence (layers/packed_sequences.ts). */
  run(ids: Tensor, cache?: AttentionCache): MaybeAsync<Tensor> {
    return then(this.transformer.run(ids, cache ?? packingOf(ids)), (h) => linear(lastUse(headPositions(h, cache)), this.transformer.wte.weight, null));
  }

  forward(ids: Tensor, cache?: AttentionCache): Tensor {
    return settled(this.run(ids, cache), 'gpt2');
  }

  forwardAsync(ids: Tensor): Promise<Tensor> {
    return Promise.resolve(this.run(ids));
  }

  /** The layer list (nn/layer_list.ts): what pipeline stages and ZeRO-3's gather groups cut by. */
  layerList(): ModelLayer[] {
    return this.transformer.layerList('transformer.');
  }
}

/** HF's _init_weights: N(0, 0.02) weights, zero biases, residual projections N(0, 0.02/√(2·layers)). */
function initGpt2(model: Module, spec: Gpt2Spec, rng: Rng): void {
  for (const [name, p] of model.namedParameters()) {
    if (name.includes('ln_')) continue;
    if (name.endsWith('.bias')) fillConst(p, 0);
    else fillNormal(p, rng, name.endsWith('c_proj.weight') ? 0.02 / Math.sqrt(2 * spec.layers) : 0.02);
  }
}

export function buildGpt2(spec: Gpt2Spec, seed: number): Gpt2LMHead {
  return new Gpt2LMHead(spec, seed);
}
