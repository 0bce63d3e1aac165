/**
 * The tokenizer a GGUF file carries in its metadata (`tokenizer.ggml.*`, as llama.cpp's converter
 * writes it): byte-level BPE (`tokenizer.ggml.model` "gpt2": GPT-2, Llama 3, Qwen2/3, SmolLM2), its
 * vocabulary, merges and token types — control tokens (type 3) special, user-defined ones (4) added
 * tokens, both matched whole in text — and the pre-tokenizer `tokenizer.ggml.pre` names, each the
 * split of the model family it stands for in llama.cpp (nn/interchange/gguf_pre_tokenizers.ts).
 * SentencePiece ("llama": Llama 2, TinyLlama) stores scores, not merges, and is refused by name.
 *
 * It encodes as `@huggingface/tokenizers` does the tokenizer.json the metadata stands for (which
 * `export` writes, below): added tokens split out first (the longest at the leftmost place), the
 * rest normalized and pre-tokenized by that library's own classes, then merged by our ByteLevelBpe
 * over a ByteLevelVocab. The library's model holds the vocabulary and merges as Maps of strings: a
 * Qwen2.5 file's tokenizer kept 38 MB of heap that way, 5.7 MB of arrays this way.
 */
import * as hfTokenizers from '@huggingface/tokenizers';
import { ByteLevelBpe } from './byte_bpe.js';
import { ByteLevelVocab } from './byte_level_vocab.js';
import { DataError } from './errors.js';
import { withEnds } from './hf_tokenizer.js';
import { PRE_TOKENIZERS } from '../nn/interchange/gguf_pre_tokenizers.js';
import type { Tokenizer } from './tokenizer.js';

type Metadata = Readonly<Record<string, unknown>>;

interface PreTokenizer { pre_tokenize(text: string): string[] }
interface Normalizer { normalize(text: string): string }
/**
 * The library's pre-tokenizer and normalizer classes, as it exports them: its type declarations
 * re-export them through paths without extensions, which TypeScript's NodeNext resolution does not
 * follow, so their types are written here.
 */
const { SequencePreTokenizer, SequenceNormalizer } = hfTokenizers as unknown as {
  SequencePreTokenizer: new (config: { type: 'Sequence'; pretokenizers: object[] }) => PreTokenizer;
  SequenceNormalizer: new (config: { type: 'Sequence'; normalizers: object[] }) => Normalizer;
};

const TOKEN_CONTROL = 3;
const TOKEN_USER_DEFINED = 4;

/** The tokenizer of a GGUF file's metadata (`path` names the file in messages). */
export function tokenizerFromGguf(path: string, meta: Metadata): Tokenizer {
  const { encoder, decoder } = codecOf(path, meta);
  const { vocabSize, bos, eos, eosText } = endsOf(meta);
  return {
    name: path, vocabSize, bos, eos, eosText,
    encode: (text) => encoder.encode(text),
    encodeDocument: (text) => withEnds(encoder.encode(text), bos, eos),
    decode: (ids) => decoder.decode(ids),
  };
}

/**
 * The encoder and decoder, made apart so that the tokenizer's functions keep none of the metadata
 * alive (V8 shares one context between a function's closures).
 */
function codecOf(path: string, meta: Metadata): { encoder: GgufEncoder; decoder: GgufDecoder } {
  const { tokens, merges, types, pre } = tokenizerMetadata(path, meta);
  const added = new Uint8Array(tokens.length);
  const addedIds = new Map<string, number>();
  for (let id = 0; id < tokens.length; id++) {
    added[id] = Number(types[id] === TOKEN_CONTROL || types[id] === TOKEN_USER_DEFINED);
    if (added[id] && tokens[id].length > 0) addedIds.set(tokens[id], id);
  }
  const vocab = new ByteLevelVocab(tokens, added);
  return {
    encoder: new GgufEncoder(new ByteLevelBpe(vocab, merges, pre.ignoreMerges ?? false, path), addedIds, pre),
    decoder: new GgufDecoder(vocab),
  };
}

/** Text to ids: added tokens split out, the rest normalized, pre-tokenized and merged. */
class GgufEncoder {
  /** The added tokens' texts, the longest first (so the alternation matches the longest), or null. */
  private readonly addedPattern: RegExp | null;
  private readonly normalizer: Normalizer | null;
  private readonly preTokenizer: PreTokenizer;

  /** `addedIds`: each added token's text and id (of equal texts the last). */
  constructor(private readonly bpe: ByteLevelBpe, private readonly addedIds: ReadonlyMap<string, number>, pre: { pre: object; normalizer?: object }) {
    const texts = [...addedIds.keys()].sort((a, b) => b.length - a.length);
    this.addedPattern = texts.length > 0 ? new RegExp(texts.map(escapeRegExp).join('|'), 'g') : null;
    this.normalizer = pre.normalizer ? new SequenceNormalizer({ type: 'Sequence', normalizers: [pre.normalizer] }) : null;
    this.preTokenizer = new SequencePreTokenizer({ type: 'Sequence', pretokenizers: [pre.pre] });
  }

  encode(text: string): Int32Array {
    const ids: number[] = [];
    let from = 0;
    for (const match of this.addedPattern ? text.matchAll(this.addedPattern) : []) {
      this.encodePlain(text.slice(from, match.index), ids);
      ids.push(this.addedIds.get(match[0])!);
      from = match.index + match[0].length;
    }
    this.encodePlain(text.slice(from), ids);
    return Int32Array.from(ids);
  }

  private encodePlain(text: string, ids: number[]): void {
    const normalized = text.length > 0 && this.normalizer ? this.normalizer.normalize(text) : text;
    if (normalized.length === 0) return;
    for (const piece of this.preTokenizer.pre_tokenize(normalized)) this.bpe.encode(piece, ids);
  }
}

/**
 * Ids to text: the tokens' bytes put together and read as UTF-8 once (the library reads the runs
 * between added tokens apart and puts the added texts between them: the same text, as an added
 * token's UTF-8 starts with a whole character).
 */
class GgufDecoder {
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(private readonly vocab: ByteLevelVocab) {}

  decode(ids: ArrayLike<number>): string {
    // An id past the vocabulary decodes to nothing, as in the library.
    const known = (id: number): boolean => id >= 0 && id < this.vocab.size;
    let length = 0;
    for (let i = 0; i < ids.length; i++) if (known(ids[i])) length += this.vocab.bytesOf(ids[i]).length;
    const bytes = new Uint8Array(length);
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      if (!known(ids[i])) continue;
      const token = this.vocab.bytesOf(ids[i]);
      bytes.set(token, at);
      at += token.length;
    }
    return this.utf8.decode(bytes);
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The vocabulary's size and end tokens. */
function endsOf(meta: Metadata): { vocabSize: number; bos: number | null; eos: number | null; eosText: string | null } {
  const tokens = meta['tokenizer.ggml.tokens'] as string[];
  const id = (key: string): number | null => (typeof meta[key] === 'number' && meta[key] as number < tokens.length ? meta[key] as number : null);
  const eos = id('tokenizer.ggml.eos_token_id');
  const bos = meta['tokenizer.ggml.add_bos_token'] === true ? id('tokenizer.ggml.bos_token_id') : null;
  return { vocabSize: tokens.length, bos, eos, eosText: eos === null ? null : tokens[eos] };
}

/**
 * The Hugging Face tokenizer.json a GGUF file's tokenizer metadata stands for, as a file holds it
 * (refused by name where we read none): what `export` writes, and what tokenizerFromGguf encodes as.
 */
export function ggufTokenizerJson(path: string, meta: Metadata): Record<string, unknown> {
  const { tokens, merges, types, pre } = tokenizerMetadata(path, meta);
  return {
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
      vocab: Object.fromEntries(tokens.map((t, id) => [t, id])), merges,
    },
  };
}

/** The tokenizer metadata we read, checked: byte-level BPE, its tokens, merges and types, and its split by `pre` name. */
function tokenizerMetadata(path: string, meta: Metadata): { tokens: string[]; merges: string[]; types: readonly number[]; pre: (typeof PRE_TOKENIZERS)[string] } {
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
  return { tokens, merges, types, pre };
}

function stringList(path: string, meta: Metadata, key: string): string[] {
  const v = meta[key];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new DataError(path, `the metadata has no ${key} (a list of strings)`);
  return v as string[];
}
