import { add, gelu } from '../../tensor/ops/elementwise.js';
import { lastUse } from '../../tensor/handover.js';
import { linear } from '../../tensor/ops/matmul.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../util/rng.js';
import { Dropout } from '../layers/activation.js';
import { mergeHeads, scaledDotProductAttention, splitQkv } from '../layers/attention.js';
import { Embedding, tokenIds } from '../layers/embedding.js';
import { fillConst, fillNormal } from '../layers/init_fill.js';
import { Linear } from '../layers/linear.js';
import { LayerNorm } from '../layers/norm.js';
import { Sequential } from '../layers/sequential.js';
import type { ModelLayer } from '../layer_list.js';
import { Module } from '../module.js';
import type { ForwardStage } from '../stages.js';

/**
 * GPT-2 (Radford et al. 2019): decoder-only transformer with learned positions, pre-LayerNorm
 * blocks, causal self-attention, tanh-GELU MLP and an LM head tied to the token embedding.
 * Module names follow Hugging Face's GPT2LMHeadModel (transformer.wte, transformer.h.0.attn.c_attn,
 * ...). HF stores its Conv1D weights [in, out]; ours are Linear [out, in] (one fused GEMM with the
 * bias), and interchange/hf_names.ts transposes them on the way in and out. Dropout (resid_pdrop =
 * embd_pdrop = attn_pdrop) applies after the embeddings, to the attention probabilities and to each
 * residual branch, in training only.
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
  private readonly c_attn: Linear;
  private readonly c_proj: Linear;

  constructor(private readonly spec: Gpt2Spec, rng: Rng, private readonly drop: Dropout) {
    super();
    this.c_attn = this.registerModule('c_attn', new Linear(spec.width, 3 * spec.width, rng));
    this.c_proj = this.registerModule('c_proj', new Linear(spec.width, spec.width, rng));
  }

  forward(x: Tensor): Tensor {
    const [q, k, v] = splitQkv(this.c_attn.forward(x), this.spec.heads);
    return this.drop.forward(this.c_proj.forward(mergeHeads(scaledDotProductAttention(q, k, v, true, this.drop.forAttention()))));
  }
}

class Gpt2Mlp extends Module {
  private readonly c_fc: Linear;
  private readonly c_proj: Linear;

  constructor(width: number, rng: Rng, private readonly drop: Dropout) {
    super();
    this.c_fc = this.registerModule('c_fc', new Linear(width, 4 * width, rng));
    this.c_proj = this.registerModule('c_proj', new Linear(4 * width, width, rng));
  }

  forward(x: Tensor): Tensor {
    return this.drop.forward(this.c_proj.forward(lastUse(gelu(this.c_fc.forward(x)))));
  }
}

class Gpt2Block extends Module {
  private readonly ln_1: LayerNorm;
  private readonly attn: Gpt2Attention;
  private readonly ln_2: LayerNorm;
  private readonly mlp: Gpt2Mlp;

  constructor(spec: Gpt2Spec, rng: Rng, drop: Dropout) {
    super();
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(spec.width));
    this.attn = this.registerModule('attn', new Gpt2Attention(spec, rng, drop));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(spec.width));
    this.mlp = this.registerModule('mlp', new Gpt2Mlp(spec.width, rng, drop));
  }

  forward(x: Tensor): Tensor {
    // Each norm's output feeds one linear only: under bf16 it saves a bf16 copy and lets it go (lastUse).
    const h = add(x, this.attn.forward(lastUse(this.ln_1.forward(x))));
    return add(h, this.mlp.forward(lastUse(this.ln_2.forward(h))));
  }
}

/** The transformer body: token ids [N, T] (as floats) → hidden states [N, T, width]. */
class Gpt2Model extends Module {
  readonly wte: Embedding;
  private readonly wpe: Embedding;
  private readonly h: Sequential;
  private readonly ln_f: LayerNorm;

  constructor(private readonly spec: Gpt2Spec, rng: Rng, private readonly drop: Dropout) {
    super();
    this.wte = this.registerModule('wte', new Embedding(spec.vocabSize, spec.width, rng));
    this.wpe = this.registerModule('wpe', new Embedding(spec.context, spec.width, rng));
    this.h = this.registerModule('h', new Sequential(...Array.from({ length: spec.layers }, () => new Gpt2Block(spec, rng, drop))));
    this.ln_f = this.registerModule('ln_f', new LayerNorm(spec.width));
  }

  forward(ids: Tensor): Tensor {
    return this.ln_f.forward(this.h.forward(this.embed(ids)));
  }

  /** Token plus position embeddings (then dropout): the input of the first block. */
  embed(ids: Tensor): Tensor {
    const [N, T] = ids.shape;
    if (ids.ndim !== 2) throw new Error(`gpt2: expected token ids [N, T], got [${ids.shape.join(', ')}]`);
    if (T > this.spec.context) throw new Error(`gpt2: sequence length ${T} exceeds the model's context ${this.spec.context} (--context)`);
    const positions = this.wpe.lookup(Int32Array.from({ length: T }, (_, i) => i), [T]);
    return this.drop.forward(add(this.wte.lookup(tokenIds(ids), [N, T]), positions));
  }

  /** The embeddings, each block, then the final norm with the head tied to wte (one layer each). */
  layerList(prefix: string): ModelLayer[] {
    const drop: [string, Module] = ['drop', this.drop];
    const blocks = this.h.layers.map((block, i): ModelLayer => ({
      name: `${prefix}h.${i}`, modules: [[`${prefix}h.${i}`, block], drop], forward: (x) => block.forward(x),
    }));
    const ln_f = this.ln_f;
    return [
      { name: `${prefix}wte+wpe`, modules: [[`${prefix}wte`, this.wte], [`${prefix}wpe`, this.wpe], drop], forward: (ids) => this.embed(ids) },
      ...blocks,
      {
        name: `${prefix}ln_f+lm_head`, modules: [[`${prefix}ln_f`, ln_f]], tied: { name: `${prefix}wte.weight`, tensor: this.wte.weight },
        forward: (x, tied) => linear(ln_f.forward(x), tied!, null),
      },
    ];
  }

  /** The embeddings, each block, then the final norm with the tied head (`head`): forward's ops in its order. */
  forwardStages(head: (x: Tensor) => Tensor): ForwardStage[] {
    const p = 'transformer.';
    return [
      { name: `${p}embed`, modules: [`${p}wte`, `${p}wpe`], run: (ids) => this.embed(ids) },
      ...this.h.forwardStages(`${p}h.`),
      { name: `${p}ln_f+head`, modules: [`${p}ln_f`, `${p}wte`], run: (x) => head(this.ln_f.forward(x)) },
    ];
  }
}

/** GPT2LMHeadModel: logits [N, T, vocab] with the head tied to transformer.wte. */
export class Gpt2LMHead extends Module {
  readonly transformer: Gpt2Model;

  constructor(readonly spec: Gpt2Spec, seed: number) {
    super();
    if (spec.width % spec.heads !== 0) throw new Error(`gpt2: width ${spec.width} is not divisible by ${spec.heads} heads`);
    const rng = Rng.derive(seed, 0x475054);
    // One dropout module shared by every site; registered here so train()/eval() reach it.
    const drop = this.registerModule('drop', new Dropout(spec.dropout, Rng.derive(seed, 0x475054, 1)));
    this.transformer = this.registerModule('transformer', new Gpt2Model(spec, rng, drop));
    initGpt2(this, spec, rng);
  }

  forward(ids: Tensor): Tensor {
    return linear(lastUse(this.transformer.forward(ids)), this.transformer.wte.weight, null);
  }

  layerList(): ModelLayer[] {
    return this.transformer.layerList('transformer.');
  }

  /** Stages over the top-level blocks (nn/stages.ts): embeddings, each block, final norm and tied head. */
  forwardStages(): ForwardStage[] {
    return this.transformer.forwardStages((x) => linear(x, this.transformer.wte.weight, null));
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
