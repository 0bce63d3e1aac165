import { isGradEnabled } from '../../tensor/autograd.js';
import { add, affine } from '../../tensor/ops/elementwise.js';
import { lastUse } from '../../tensor/handover.js';
import { linear } from '../../tensor/ops/matmul.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../util/rng.js';
import { Dropout } from '../layers/activation.js';
import { type AttentionCache, headPositions } from '../layers/attention.js';
import { Embedding, tokenIds } from '../layers/embedding.js';
import { fillConst, fillNormal } from '../layers/init_fill.js';
import { Linear } from '../layers/linear.js';
import { LlamaAttention } from '../layers/llama_attention.js';
import { type FusedBlockParts, fusedDecodeBlock, fusedDecodeStack } from '../layers/llama_fused_decode.js';
import { LlamaMlp } from '../layers/llama_mlp.js';
import { type MaybeAsync, eachInTurn, runModule, settled, then } from '../layers/maybe_async.js';
import { attachAuxLoss, loadBalancingLoss } from '../layers/router_loss.js';
import { type MoeSpec, SparseMoeBlock } from '../layers/sparse_moe.js';
import { type Projections, wholeProjections } from '../layers/projections.js';
import { RMSNorm } from '../layers/rms_norm.js';
import { RotaryEmbedding } from '../layers/rotary.js';
import { packingOf, refusePacking } from '../layers/packed_sequences.js';
import { Sequential } from '../layers/sequential.js';
import type { ModelLayer } from '../layer_list.js';
import { Module } from '../module.js';
import { inLayerScope } from '../../tensor/layer_recycling.js';

/**
 * The Llama family (Touvron et al. 2023; Hugging Face's LlamaForCausalLM, Qwen2ForCausalLM and
 * Qwen3ForCausalLM): a decoder of pre-RMSNorm blocks, each grouped-query causal attention with
 * rotary positions then a SwiGLU MLP, a final RMSNorm and an LM head tied to the token embedding or
 * its own matrix. Module names are Hugging Face's (model.layers.0.self_attn.q_proj, mlp.gate_proj,
 * input_layernorm, ...), Linear [out, in] as theirs, so checkpoints load by name unchanged.
 *
 * Tensor parallelism swaps split projections in (layers/projections.ts) as for GPT-2: q/k/v and
 * gate/up column-parallel, o and down row-parallel, heads and kv heads split over the group; the
 * embedding, norms and head stay whole on every rank. `dropout` drops attention probabilities and
 * each residual branch while training (Hugging Face's Llama has only the former; 0 in every preset).
 *
 * One spec for the four configs: Qwen2 is Llama with biases on q/k/v, Qwen3 is Llama with a
 * per-head RMSNorm on q and k, Llama 3 scales the rotary frequencies (`ropeScaling`), and Mixtral
 * replaces each MLP by a sparse mixture of experts (`moe`; layers/sparse_moe.ts) whose
 * load-balancing loss the forward attaches to its logits for the training loss (router_loss.ts).
 */

/** Llama 3's rotary scaling (config.json `rope_scaling` / `rope_parameters` with rope_type "llama3"). */
export interface RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  /** original_max_position_embeddings: the context the unscaled frequencies were trained for. */
  originalContext: number;
}

export interface LlamaSpec {
  type: 'llama';
  /** config.json model_type written back out (qwen2: q/k/v biases; qwen3: q/k norms; mixtral: experts; mistral: Llama's math under its own name). */
  modelType: 'llama' | 'qwen2' | 'qwen3' | 'mixtral' | 'mistral';
  vocabSize: number;
  /** max_position_embeddings: the positions the model was built for (not the training window). */
  context: number;
  /** num_hidden_layers */
  layers: number;
  /** hidden_size */
  width: number;
  /** intermediate_size: the SwiGLU MLP's inner width. */
  intermediate: number;
  /** num_attention_heads */
  heads: number;
  /** num_key_value_heads: heads % kvHeads == 0 (grouped-query attention). */
  kvHeads: number;
  /** head_dim (config.json may omit it: width / heads). */
  headDim: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** rms_norm_eps */
  rmsEps: number;
  /** tie_word_embeddings: the LM head reads model.embed_tokens.weight (no lm_head.weight). */
  tieEmbeddings: boolean;
  /** attention_bias (Qwen2: true): biases on q_proj, k_proj and v_proj. */
  qkvBias: boolean;
  /** Qwen3's per-head RMSNorm on q and k (before rotary). */
  qkNorm: boolean;
  /** attention_dropout (and the residual dropout --dropout sets). */
  dropout: number;
  /** Mixtral: each block's MLP is a sparse mixture of experts of `intermediate` width each; absent or null: a plain MLP. */
  moe?: MoeSpec | null;
}

/** A pre-norm decoder block: h = x + attention(norm(x)), then h + mlp(norm(h)). */
class LlamaDecoderLayer extends Module {
  private readonly self_attn: LlamaAttention;
  /** The MLP (`mlp`), or Mixtral's experts (`block_sparse_moe`). */
  private readonly ffn: LlamaMlp | SparseMoeBlock;
  private readonly input_layernorm: RMSNorm;
  private readonly post_attention_layernorm: RMSNorm;

  constructor(spec: LlamaSpec, rng: Rng, rope: RotaryEmbedding, drop: Dropout, split: Projections) {
    super();
    this.self_attn = this.registerModule('self_attn', new LlamaAttention(spec, rng, rope, drop, split));
    if (spec.moe && split.size > 1) throw new Error(`${spec.modelType}: tensor parallelism does not split a mixture of experts (use --expert-parallel)`);
    this.ffn = spec.moe
      ? this.registerModule('block_sparse_moe', new SparseMoeBlock(spec.width, spec.intermediate, spec.moe, rng, drop))
      : this.registerModule('mlp', new LlamaMlp(spec.width, spec.intermediate, rng, drop, split));
    this.input_layernorm = this.registerModule('input_layernorm', new RMSNorm(spec.width, spec.rmsEps));
    this.post_attention_layernorm = this.registerModule('post_attention_layernorm', new RMSNorm(spec.width, spec.rmsEps));
  }

  run(x: Tensor, cache?: AttentionCache): MaybeAsync<Tensor> {
    const fused = cache ? fusedDecodeBlock(this.fusedParts(), x, cache) : null;
    if (fused) return fused;
    return then(this.self_attn.run(this.input_layernorm.forward(x), cache), (a) => {
      const h = add(x, a);
      return then(runModule(this.ffn, this.post_attention_layernorm.forward(h)), (m) => add(h, m));
    });
  }

  forward(x: Tensor): Tensor {
    return settled(this.run(x), 'llama block');
  }

  /** The block's parts for a fused decode step (layers/llama_fused_decode.ts), or null where it cannot take one. */
  fusedParts(): FusedBlockParts | null {
    const attention = this.self_attn.fusedParts();
    const mlp = this.ffn instanceof LlamaMlp ? this.ffn.fusedParts() : null;
    return attention && mlp ? { attention, mlp, inNorm: this.input_layernorm, postNorm: this.post_attention_layernorm } : null;
  }

  /** The experts (a Mixtral block), else null. */
  get moe(): SparseMoeBlock | null {
    return this.ffn instanceof SparseMoeBlock ? this.ffn : null;
  }
}

/** The decoder body: token ids [N, T] → hidden states [N, T, width] after the final norm. */
class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  private readonly layers: Sequential;
  readonly norm: RMSNorm;

  constructor(private readonly spec: LlamaSpec, rng: Rng, drop: Dropout, split: Projections) {
    super();
    const rope = new RotaryEmbedding(spec.headDim, spec.ropeTheta, spec.ropeScaling);
    this.embed_tokens = this.registerModule('embed_tokens', new Embedding(spec.vocabSize, spec.width, rng));
    const blocks = Array.from({ length: spec.layers }, () => new LlamaDecoderLayer(spec, rng, rope, drop, split));
    this.layers = this.registerModule('layers', new Sequential(...blocks));
    this.norm = this.registerModule('norm', new RMSNorm(spec.width, spec.rmsEps));
  }

  get blocks(): LlamaDecoderLayer[] {
    return this.layers.layers as LlamaDecoderLayer[];
  }

  run(ids: Tensor, cache?: AttentionCache): MaybeAsync<Tensor> {
    const x = this.embed(ids, cache?.offsets);
    // A batch-1 decode step: every block in one backend call where the backend has it.
    const stacked = cache ? fusedDecodeStack(this, this.blocks, x, cache) : null;
    if (stacked) return this.norm.forward(stacked);
    return then(eachInTurn(this.blocks, x, (block, h) => inLayerScope(() => block.run(h, cache))), (h) => this.norm.forward(h));
  }

  forward(ids: Tensor, cache?: AttentionCache): Tensor {
    return settled(this.run(ids, cache), this.spec.modelType);
  }

  /**
   * The token embeddings: the first block's input (positions enter inside attention, by rotation).
   * `offsets`: positions already cached (generation; one number, or one per row), counted against
   * max_position_embeddings.
   */
  embed(ids: Tensor, offsets: number | readonly number[] = 0): Tensor {
    const [N, T] = ids.shape;
    if (ids.ndim !== 2) throw new Error(`${this.spec.modelType}: expected token ids [N, T], got [${ids.shape.join(', ')}]`);
    const longest = Math.max(...(typeof offsets === 'number' ? [offsets] : offsets)) + T;
    if (longest > this.spec.context) throw new Error(`${this.spec.modelType}: sequence length ${longest} exceeds the model's ${this.spec.context} positions (max_position_embeddings)`);
    return this.embed_tokens.lookup(tokenIds(ids), [N, T]);
  }
}

/** LlamaForCausalLM (and Qwen2's, Qwen3's): logits [N, T, vocab]. */
export class LlamaForCausalLM extends Module {
  readonly model: LlamaModel;
  /** The head's own matrix; null when tied to model.embed_tokens. */
  private readonly lm_head: Linear | null;
  private readonly drop: Dropout;

  /** `split`: whole projections (one rank), or a tensor-parallel group's shards of them. */
  constructor(readonly spec: LlamaSpec, seed: number, split: Projections = wholeProjections) {
    super();
    checkLlamaSpec(spec);
    const rng = Rng.derive(seed, 0x4c4c4d);
    // One dropout module shared by every site; registered here so train()/eval() reach it.
    this.drop = this.registerModule('drop', new Dropout(spec.dropout, Rng.derive(seed, 0x4c4c4d, 1)));
    this.model = this.registerModule('model', new LlamaModel(spec, rng, this.drop, split));
    this.lm_head = spec.tieEmbeddings ? null : this.registerModule('lm_head', new Linear(spec.width, spec.vocabSize, rng, { bias: false }));
    initLlama(this, rng);
  }

  /**
   * The logits, once the group's sums are in (split projections); at once on one rank. `cache`
   * (generation): ids continue the cached positions (generate/kv_cache.ts). Ids marked as packed
   * windows (layers/packed_sequences.ts) attend within each packed sequence.
   */
  run(ids: Tensor, cache?: AttentionCache): MaybeAsync<Tensor> {
    return then(this.model.run(ids, cache ?? packingOf(ids)), (h) => this.withAuxLoss(this.head(lastUse(headPositions(h, cache)))));
  }

  /** Mixtral: the load-balancing loss of the last forward's routing (unweighted, as transformers' aux_loss); null without experts. */
  routerAuxLoss(): Tensor | null {
    const moe = this.spec.moe;
    if (!moe) return null;
    return loadBalancingLoss(this.model.blocks.map((b) => b.moe!.lastRouting!), moe.experts);
  }

  /** While training a Mixtral, the logits carry router_aux_loss_coef × the load-balancing loss for the training loss to add. */
  private withAuxLoss(logits: Tensor): Tensor {
    const moe = this.spec.moe;
    if (!moe || !isGradEnabled() || moe.auxLossCoef === 0) return logits;
    return attachAuxLoss(logits, affine(this.routerAuxLoss()!, moe.auxLossCoef));
  }

  forward(ids: Tensor, cache?: AttentionCache): Tensor {
    return settled(this.run(ids, cache), this.spec.modelType);
  }

  forwardAsync(ids: Tensor): Promise<Tensor> {
    return Promise.resolve(this.run(ids));
  }

  /** The layer list (nn/layer_list.ts): the embedding, each block, the final norm with the head. */
  layerList(): ModelLayer[] {
    const drop: [string, Module] = ['drop', this.drop];
    const { embed_tokens, norm } = this.model;
    const blocks = this.model.blocks.map((block, i): ModelLayer => ({
      name: `model.layers.${i}`, modules: [[`model.layers.${i}`, block], drop], forward: (x, _tied, cache) => block.run(x, cache),
    }));
    const embedIds = (ids: Tensor, offsets?: number | readonly number[]): Tensor => {
      refusePacking(ids, this.spec.modelType);
      return this.model.embed(ids, offsets);
    };
    const embed: ModelLayer = { name: 'model.embed_tokens', modules: [['model.embed_tokens', embed_tokens]], forward: (ids, _tied, cache) => embedIds(ids, cache?.offsets) };
    const head: ModelLayer = this.lm_head
      ? { name: 'model.norm+lm_head', modules: [['model.norm', norm], ['lm_head', this.lm_head]], forward: (x) => this.lm_head!.forward(norm.forward(x)) }
      : {
        name: 'model.norm+lm_head', modules: [['model.norm', norm]], tied: { name: 'model.embed_tokens.weight', tensor: embed_tokens.weight },
        forward: (x, tied) => linear(norm.forward(x), tied!, null),
      };
    return [embed, ...blocks, head];
  }

  private head(h: Tensor): Tensor {
    return this.lm_head ? this.lm_head.forward(h) : linear(h, this.model.embed_tokens.weight, null);
  }
}

/** Refuses a spec the model cannot build, naming the config.json field. */
export function checkLlamaSpec(spec: LlamaSpec): void {
  const who = spec.modelType ?? 'llama';
  for (const f of ['vocabSize', 'context', 'layers', 'width', 'intermediate', 'heads', 'kvHeads', 'headDim'] as const) {
    if (!Number.isInteger(spec[f]) || spec[f] < 1) throw new Error(`${who}: ${f} must be a positive integer, got ${spec[f]}`);
  }
  if (spec.heads % spec.kvHeads !== 0) throw new Error(`${who}: ${spec.heads} attention heads do not divide into ${spec.kvHeads} key/value heads (num_key_value_heads)`);
  if (spec.headDim % 2 !== 0) throw new Error(`${who}: head_dim ${spec.headDim} must be even (rotary rotates pairs)`);
  if (!(spec.rmsEps > 0)) throw new Error(`${who}: rms_norm_eps must be positive, got ${spec.rmsEps}`);
  if (!(spec.dropout >= 0 && spec.dropout < 1)) throw new Error(`${who}: dropout must be in [0, 1), got ${spec.dropout}`);
  if ((spec.modelType === 'mixtral') !== Boolean(spec.moe)) throw new Error(`${who}: experts (num_local_experts) go with model_type mixtral, and mixtral needs them`);
  if (spec.moe && (!Number.isInteger(spec.moe.experts) || spec.moe.experts < 1)) throw new Error(`${who}: num_local_experts must be a positive integer, got ${spec.moe.experts}`);
  if (spec.moe && (!Number.isInteger(spec.moe.topK) || spec.moe.topK < 1 || spec.moe.topK > spec.moe.experts)) {
    throw new Error(`${who}: num_experts_per_tok must be an integer in [1, ${spec.moe.experts}] (num_local_experts), got ${spec.moe.topK}`);
  }
  if (spec.moe && !(spec.moe.auxLossCoef >= 0)) throw new Error(`${who}: router_aux_loss_coef must be ≥ 0, got ${spec.moe.auxLossCoef}`);
}

/** Hugging Face's _init_weights: weights and embeddings N(0, 0.02), biases 0, RMSNorm weights 1. */
function initLlama(model: Module, rng: Rng): void {
  for (const [name, p] of model.namedParameters()) {
    if (name.endsWith('norm.weight')) continue;
    if (name.endsWith('.bias')) fillConst(p, 0);
    else fillNormal(p, rng, 0.02);
  }
}

export function buildLlama(spec: LlamaSpec, seed: number): LlamaForCausalLM {
  return new LlamaForCausalLM(spec, seed);
}
