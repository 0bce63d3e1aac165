/**
 * The Llama family's shape (Hugging Face's LlamaConfig, Qwen2Config and Qwen3Config as one spec):
 * Qwen2 is Llama with biases on q/k/v, Qwen3 is Llama with a per-head RMSNorm on q and k, and
 * Llama 3 scales the rotary frequencies (`ropeScaling`). nn/models/llama.ts builds it.
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
  /** config.json model_type written back out: 'llama' | 'qwen2' | 'qwen3' (qwen2: q/k/v biases; qwen3: q/k norms). */
  modelType: 'llama' | 'qwen2' | 'qwen3';
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
}
