import type { ModelSpec } from '../models/index.js';

/**
 * How a model's tensors are named and laid out in PyTorch / Hugging Face state dicts. Our module
 * names already are theirs (gpt2.ts, bert.ts, resnet.ts), so the map is mostly the identity; what
 * differs per family:
 *   - GPT-2: HF's Conv1D stores weights [in, out]; our Linear stores [out, in] → transposed. The
 *     published checkpoints name tensors without the "transformer." prefix and carry causal-mask
 *     buffers (h.N.attn.bias, h.N.attn.masked_bias) and sometimes lm_head.weight (tied): skipped.
 *   - BERT: cls.predictions.decoder.{weight,bias} are tied to the word embeddings and
 *     cls.predictions.bias (written for PyTorch, skipped on load); position_ids and the pooler, which
 *     BertForMaskedLM does not use, are skipped; old checkpoints' LayerNorm.gamma/beta are read.
 *   - Llama family: Hugging Face's names exactly (nn/models/llama.ts); a tied model reads no
 *     lm_head.weight (some tied checkpoints carry a copy: skipped) and writes none (transformers ties
 *     it on load); older checkpoints' rotary_emb.inv_freq buffers are skipped (we compute them).
 *   - ResNet: torchvision's names; BatchNorm's num_batches_tracked is an I64 scalar.
 */
export interface NameMap {
  /** Our name → the external name. */
  external(name: string): string;
  /** Names to try when reading, in order (aliases of older or prefix-less checkpoints). */
  candidates(name: string): string[];
  /** True when the external tensor is stored transposed relative to ours (2-d). */
  transposed(name: string): boolean;
  /** External tensors that are expected in a file but not read (tied copies, unused buffers). */
  skippable(external: string): boolean;
  /** Extra tensors to write so PyTorch's strict load_state_dict accepts the file (tied copies). */
  tiedCopies: [external: string, ours: string][];
}

const CONV1D = /\.(c_attn|c_proj|c_fc)\.weight$/;

function gpt2Map(): NameMap {
  return {
    external: (n) => n,
    candidates: (n) => [n, n.replace(/^transformer\./, '')],
    transposed: (n) => CONV1D.test(n),
    skippable: (e) => /(^|\.)attn\.(bias|masked_bias)$/.test(e) || e === 'lm_head.weight',
    tiedCopies: [['lm_head.weight', 'transformer.wte.weight']],
  };
}

function bertMap(): NameMap {
  return {
    external: (n) => n,
    candidates: (n) => [n, n.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta')],
    transposed: () => false,
    skippable: (e) => /^cls\.predictions\.decoder\.(weight|bias)$/.test(e) || /position_ids$/.test(e) || e.startsWith('bert.pooler.') ||
      e.startsWith('cls.seq_relationship.'),
    tiedCopies: [['cls.predictions.decoder.weight', 'bert.embeddings.word_embeddings.weight'], ['cls.predictions.decoder.bias', 'cls.predictions.bias']],
  };
}

function llamaMap(tied: boolean): NameMap {
  return {
    external: (n) => n,
    candidates: (n) => [n],
    transposed: () => false,
    skippable: (e) => /\.rotary_emb\.inv_freq$/.test(e) || (tied && e === 'lm_head.weight'),
    tiedCopies: [],
  };
}

function identityMap(): NameMap {
  return {
    external: (n) => n,
    candidates: (n) => [n],
    transposed: () => false,
    skippable: (e) => e.endsWith('num_batches_tracked'),
    tiedCopies: [],
  };
}

export function nameMapFor(spec: ModelSpec): NameMap {
  switch (spec.type) {
    case 'gpt2': return gpt2Map();
    case 'bert': return bertMap();
    case 'llama': return llamaMap(spec.tieEmbeddings);
    default: return identityMap();
  }
}
