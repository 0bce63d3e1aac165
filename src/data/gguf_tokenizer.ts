/**
 * The tokenizer a GGUF file carries in its metadata (`tokenizer.ggml.*`, as llama.cpp's converter
 * writes it), rebuilt as the Hugging Face tokenizer.json it came from and run by
 * `@huggingface/tokenizers`, as a folder's tokenizer is (hf_tokenizer.ts).
 *
 * Read: byte-level BPE (`tokenizer.ggml.model` "gpt2": GPT-2, Llama 3, Qwen2/3, SmolLM2), its
 * vocabulary, merges and token types — control tokens (type 3) special, user-defined ones (4) added
 * tokens, both matched whole in text — and the pre-tokenizer `tokenizer.ggml.pre` names, each the
 * split of the model family it stands for in llama.cpp (llama-vocab.cpp). SentencePiece
 * ("llama": Llama 2, TinyLlama) stores scores, not merges, and is refused by name.
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { DataError } from './errors.js';
import { withEnds } from './hf_tokenizer.js';
import type { Tokenizer } from './tokenizer.js';

type Metadata = Readonly<Record<string, unknown>>;

/** A Split on `regex`, then byte-level mapping (Qwen2's and Llama 3's tokenizer.json). */
const splitThenBytes = (regex: string, trimOffsets: boolean): object => ({
  type: 'Sequence',
  pretokenizers: [
    { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: trimOffsets, use_regex: false },
  ],
});

const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Per `tokenizer.ggml.pre`: the pre-tokenizer, normalizer and BPE options of the family it names. */
const PRE_TOKENIZERS: Readonly<Record<string, { pre: object; normalizer?: object; ignoreMerges?: boolean }>> = {
  'qwen2': { pre: splitThenBytes(QWEN2_SPLIT, false), normalizer: { type: 'NFC' } },
  'llama-bpe': { pre: splitThenBytes(LLAMA3_SPLIT, true), ignoreMerges: true },
  'smollm': {
    pre: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }] },
  },
  'gpt-2': { pre: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true } },
  'default': { pre: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true } },
};

/**
 * The `tokenizer.ggml.pre` name of a tokenizer.json's pre-tokenizer (export), by the split it makes:
 * the inverse of the table above, null where it is none of them.
 */
export function preTokenizerName(json: { pre_tokenizer?: unknown }): string | null {
  const text = JSON.stringify(json.pre_tokenizer ?? null);
  if (text.includes(JSON.stringify(QWEN2_SPLIT))) return 'qwen2';
  if (text.includes(JSON.stringify(LLAMA3_SPLIT))) return 'llama-bpe';
  const pre = json.pre_tokenizer as { type?: string; pretokenizers?: { type?: string }[] } | null;
  if (pre?.type === 'Sequence' && pre.pretokenizers?.[0]?.type === 'Digits' && pre.pretokenizers[1]?.type === 'ByteLevel') return 'smollm';
  if (pre?.type === 'ByteLevel') return 'gpt-2';
  return null;
}

const TOKEN_CONTROL = 3;
const TOKEN_USER_DEFINED = 4;

/** The tokenizer of a GGUF file's metadata (`path` names the file in messages). */
export function tokenizerFromGguf(path: string, meta: Metadata): Tokenizer {
  const json = ggufTokenizerJson(path, meta);
  const tokens = meta['tokenizer.ggml.tokens'] as string[];
  const hf = new HfTokenizer(json, {});
  const id = (key: string): number | null => (typeof meta[key] === 'number' && meta[key] as number < tokens.length ? meta[key] as number : null);
  const eos = id('tokenizer.ggml.eos_token_id');
  const bos = meta['tokenizer.ggml.add_bos_token'] === true ? id('tokenizer.ggml.bos_token_id') : null;
  return {
    name: path, vocabSize: tokens.length, bos, eos, eosText: eos === null ? null : tokens[eos],
    encode: (text) => Int32Array.from(hf.encode(text, { add_special_tokens: false }).ids),
    encodeDocument: (text) => withEnds(Int32Array.from(hf.encode(text, { add_special_tokens: false }).ids), bos, eos),
    decode: (ids) => (ids.length === 0 ? '' : hf.decode(Array.from(ids), { clean_up_tokenization_spaces: false })),
  };
}

/** The Hugging Face tokenizer.json a GGUF file's tokenizer metadata stands for (refused by name where we read none). */
export function ggufTokenizerJson(path: string, meta: Metadata): Record<string, unknown> {
  const model = meta['tokenizer.ggml.model'];
  if (model !== 'gpt2') {
    throw new DataError(path, `tokenizer.ggml.model is ${JSON.stringify(model)}; we read byte-level BPE ("gpt2"); pass --tokenizer with the model's tokenizer.json`);
  }
  const tokens = stringList(path, meta, 'tokenizer.ggml.tokens');
  const merges = stringList(path, meta, 'tokenizer.ggml.merges');
  const types = (meta['tokenizer.ggml.token_type'] as number[] | undefined) ?? [];
  const preName = typeof meta['tokenizer.ggml.pre'] === 'string' ? meta['tokenizer.ggml.pre'] as string : 'default';
  const pre = PRE_TOKENIZERS[preName];
  if (!pre) throw new DataError(path, `tokenizer.ggml.pre is "${preName}", a split we do not know (${Object.keys(PRE_TOKENIZERS).join(', ')}); pass --tokenizer with the model's tokenizer.json`);
  const json = {
    version: '1.0',
    normalizer: pre.normalizer ?? null,
    pre_tokenizer: pre.pre,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    post_processor: null,
    added_tokens: tokens.flatMap((content, id) => (types[id] === TOKEN_CONTROL || types[id] === TOKEN_USER_DEFINED
      ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[id] === TOKEN_CONTROL }] : [])),
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false,
      byte_fallback: false, ignore_merges: pre.ignoreMerges ?? false,
      vocab: Object.fromEntries(tokens.map((t, id) => [t, id])),
      merges,
    },
  };
  return json;
}

function stringList(path: string, meta: Metadata, key: string): string[] {
  const v = meta[key];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new DataError(path, `the metadata has no ${key} (a list of strings)`);
  return v as string[];
}
