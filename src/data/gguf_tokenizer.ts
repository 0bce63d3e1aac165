/**
 * The tokenizer a GGUF file carries in its metadata (`tokenizer.ggml.*`, as llama.cpp's converter
 * writes it), rebuilt as the Hugging Face tokenizer.json it came from and run by
 * `@huggingface/tokenizers`, as a folder's tokenizer is (hf_tokenizer.ts).
 *
 * Read: byte-level BPE (`tokenizer.ggml.model` "gpt2": GPT-2, Llama 3, Qwen2/3, SmolLM2), its
 * vocabulary, merges and token types — control tokens (type 3) special, user-defined ones (4) added
 * tokens, both matched whole in text — and the pre-tokenizer `tokenizer.ggml.pre` names, each the
 * split of the model family it stands for in llama.cpp (nn/interchange/gguf_pre_tokenizers.ts). SentencePiece
 * ("llama": Llama 2, TinyLlama) stores scores, not merges, and is refused by name.
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { DataError } from './errors.js';
import { withEnds } from './hf_tokenizer.js';
import { PRE_TOKENIZERS } from '../nn/interchange/gguf_pre_tokenizers.js';
import type { Tokenizer } from './tokenizer.js';

type Metadata = Readonly<Record<string, unknown>>;

const TOKEN_CONTROL = 3;
const TOKEN_USER_DEFINED = 4;

/** The tokenizer of a GGUF file's metadata (`path` names the file in messages). */
export function tokenizerFromGguf(path: string, meta: Metadata): Tokenizer {
  const json = tokenizerJson(path, meta, heldModel);
  const hf = new HfTokenizer(json, {});
  dropBuildOnly(hf, json.model as Record<string, unknown>);
  const { vocabSize, bos, eos, eosText } = endsOf(meta);
  return {
    name: path, vocabSize, bos, eos, eosText,
    encode: (text) => Int32Array.from(hf.encode(text, { add_special_tokens: false }).ids),
    encodeDocument: (text) => withEnds(Int32Array.from(hf.encode(text, { add_special_tokens: false }).ids), bos, eos),
    decode: (ids) => (ids.length === 0 ? '' : hf.decode(Array.from(ids), { clean_up_tokenization_spaces: false })),
  };
}

/** The vocabulary's size and end tokens (apart, so the tokenizer's functions keep none of the metadata alive). */
function endsOf(meta: Metadata): { vocabSize: number; bos: number | null; eos: number | null; eosText: string | null } {
  const tokens = meta['tokenizer.ggml.tokens'] as string[];
  const id = (key: string): number | null => (typeof meta[key] === 'number' && meta[key] as number < tokens.length ? meta[key] as number : null);
  const eos = id('tokenizer.ggml.eos_token_id');
  const bos = meta['tokenizer.ggml.add_bos_token'] === true ? id('tokenizer.ggml.bos_token_id') : null;
  return { vocabSize: tokens.length, bos, eos, eosText: eos === null ? null : tokens[eos] };
}

/** The Hugging Face tokenizer.json a GGUF file's tokenizer metadata stands for, as a file holds it (refused by name where we read none). */
export function ggufTokenizerJson(path: string, meta: Metadata): Record<string, unknown> {
  return tokenizerJson(path, meta, (bpe, tokens, merges) => ({ ...bpe, vocab: vocabOf(tokens), merges }));
}

/**
 * The BPE model's vocabulary and merges as the tokenizer we run holds them: `@huggingface/tokenizers`
 * keeps the JSON it is given for its life, beside the Map and pairs it makes of it, so the merges go
 * in as pairs (the format tokenizers 0.20 writes: no "a b" strings kept beside their halves) and the
 * vocabulary as a dictionary made when read. Building a Qwen2.5 file's (151,936 tokens, 151,387
 * merges) alone, the heap held 11 MB less after it (53.7 against 64.6 MB) and was 30–37 MB smaller
 * at its end (105–112 against 142 MB).
 */
function heldModel(bpe: Record<string, unknown>, tokens: readonly string[], merges: readonly string[]): Record<string, unknown> {
  Object.defineProperty(bpe, 'vocab', { enumerable: true, configurable: true, get: () => vocabOf(tokens) });
  return Object.assign(bpe, { merges: merges.map((m) => m.split(' ', 2)) });
}

/**
 * What `@huggingface/tokenizers` keeps of a BPE model's build and never reads again once it has
 * ranked the merges (its encoding reads `bpe_ranks`): its `merges`, the JSON's (which it keeps), and
 * the vocabulary's getter (our token list): a Qwen2.5 tokenizer's heap after a collection 53.8 →
 * 38.3 MB (a script building it alone, two runs). Left as it is where the model is not the one we
 * know (no Map of ranks beside an array of merges).
 */
function dropBuildOnly(hf: HfTokenizer, model: Record<string, unknown>): void {
  const bpe = (hf as unknown as { model?: { merges?: unknown; bpe_ranks?: unknown } }).model;
  if (!bpe || !(bpe.bpe_ranks instanceof Map) || !Array.isArray(bpe.merges)) return;
  bpe.merges = [];
  model.merges = [];
  Object.defineProperty(model, 'vocab', { value: {}, enumerable: true });
}

function vocabOf(tokens: readonly string[]): Record<string, number> {
  return Object.fromEntries(tokens.map((t, id) => [t, id]));
}

/** The tokenizer.json, its BPE model (`bpe`: the settings) given its vocab and merges by `model`. */
function tokenizerJson(path: string, meta: Metadata, model: (bpe: Record<string, unknown>, tokens: readonly string[], merges: readonly string[]) => Record<string, unknown>): Record<string, unknown> {
  const tokenizerModel = meta['tokenizer.ggml.model'];
  if (tokenizerModel !== 'gpt2') {
    throw new DataError(path, `tokenizer.ggml.model is ${JSON.stringify(tokenizerModel)}; we read byte-level BPE ("gpt2"); pass --tokenizer with the model's tokenizer.json`);
  }
  const tokens = stringList(path, meta, 'tokenizer.ggml.tokens');
  const merges = stringList(path, meta, 'tokenizer.ggml.merges');
  const types = (meta['tokenizer.ggml.token_type'] as number[] | undefined) ?? [];
  const preName = typeof meta['tokenizer.ggml.pre'] === 'string' ? meta['tokenizer.ggml.pre'] as string : 'default';
  const pre = PRE_TOKENIZERS[preName];
  if (!pre) throw new DataError(path, `tokenizer.ggml.pre is "${preName}", a split we do not know (${Object.keys(PRE_TOKENIZERS).join(', ')}); pass --tokenizer with the model's tokenizer.json`);
  return {
    version: '1.0',
    normalizer: pre.normalizer ?? null,
    pre_tokenizer: pre.pre,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    post_processor: null,
    added_tokens: tokens.flatMap((content, id) => (types[id] === TOKEN_CONTROL || types[id] === TOKEN_USER_DEFINED
      ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[id] === TOKEN_CONTROL }] : [])),
    model: model({
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false,
      byte_fallback: false, ignore_merges: pre.ignoreMerges ?? false,
    }, tokens, merges),
  };
}

function stringList(path: string, meta: Metadata, key: string): string[] {
  const v = meta[key];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new DataError(path, `the metadata has no ${key} (a list of strings)`);
  return v as string[];
}
