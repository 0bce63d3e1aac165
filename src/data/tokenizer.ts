/**
 * Text → token ids. `gpt2` is GPT-2's byte-pair encoding (50 257 tokens, the ids published GPT-2
 * weights expect) from js-tiktoken, which ships the vocabulary inside the package, so nothing is
 * downloaded; `bytes` is the UTF-8 bytes of the text (256 tokens), a fallback with no vocabulary.
 * Any other name is a path to a Hugging Face `tokenizer.json` or a folder holding one
 * (hf_tokenizer.ts), or a GGUF file whose metadata holds one (gguf_tokenizer.ts; its header read
 * at the command's start).
 *
 * Documents are separated the way each family's own tokenizer does it: `encodeDocument` adds what
 * the tokenizer's post-processor adds (Llama 3 prepends <|begin_of_text|>; GPT-2, Qwen and SmolLM
 * add nothing) and then the end-of-document id, so packed windows never run one document into the
 * next unmarked.
 */
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2Ranks from 'js-tiktoken/ranks/gpt2';
import { ggufHeaderRead, isGgufFile } from '../nn/interchange/gguf.js';
import { tokenizerFromGguf } from './gguf_tokenizer.js';
import { loadHfTokenizer } from './hf_tokenizer.js';

/** The tokenizers known by name; anything else given to --tokenizer is a tokenizer.json path. */
export const TOKENIZERS = ['gpt2', 'bytes'] as const;
export type TokenizerName = (typeof TOKENIZERS)[number];

export interface Tokenizer {
  /** `gpt2`, `bytes`, or the tokenizer.json file it was read from. */
  readonly name: string;
  /** Ids are below this (the model's vocabulary must be at least this large). */
  readonly vocabSize: number;
  /** The id the post-processor puts at the start of a document (Llama 3's <|begin_of_text|>), or null. */
  readonly bos: number | null;
  /** The id that ends every document (gpt2's <|endoftext|> 50256), or null (bytes: documents just follow each other). */
  readonly eos: number | null;
  /** The end-of-document token as text: a plain-text file is split into documents where it occurs. */
  readonly eosText: string | null;
  /** The ids of `text` with nothing added (Hugging Face's add_special_tokens=False). */
  encode(text: string): Int32Array;
  /** One document as it is packed: [bos] + ids + [eos], each where this tokenizer has one. */
  encodeDocument(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
}

let gpt2: Tokenizer | null = null;

/** A tokenizer by name (`gpt2`, `bytes`) or by the path of a tokenizer.json (or a folder with one). */
export function makeTokenizer(name: string): Tokenizer {
  if (name === 'bytes') return BYTES;
  // Building the BPE tables takes about a second: once per process.
  if (name === 'gpt2') return (gpt2 ??= gpt2Tokenizer());
  if (isGgufFile(name)) return ggufTokenizer(name);
  return loadHfTokenizer(name);
}

const fromGguf = new Map<string, Tokenizer>();

/** A GGUF file's tokenizer, built once per process (its BPE tables take a while). */
function ggufTokenizer(path: string): Tokenizer {
  let t = fromGguf.get(path);
  if (!t) fromGguf.set(path, (t = tokenizerFromGguf(path, ggufHeaderRead(path).metadata)));
  return t;
}

/** True for the tokenizers known by name (not a file). */
export function isNamedTokenizer(name: string): name is TokenizerName {
  return (TOKENIZERS as readonly string[]).includes(name);
}

const GPT2_EOS = 50256;

function gpt2Tokenizer(): Tokenizer {
  const enc = new Tiktoken(gpt2Ranks);
  // '<|endoftext|>' inside a document is text, not the special token (tiktoken's default refuses
  // it): a web page quoting it must not cut itself in two. Documents end with the real id instead.
  const encode = (text: string): Int32Array => Int32Array.from(enc.encode(text, [], []));
  return {
    name: 'gpt2', vocabSize: 50257, bos: null, eos: GPT2_EOS, eosText: '<|endoftext|>',
    encode,
    encodeDocument: (text) => {
      const ids = encode(text);
      const out = new Int32Array(ids.length + 1);
      out.set(ids);
      out[ids.length] = GPT2_EOS;
      return out;
    },
    decode: (ids) => enc.decode(Array.from(ids)),
  };
}

const BYTES: Tokenizer = {
  name: 'bytes', vocabSize: 256, bos: null, eos: null, eosText: null,
  encode: (text) => Int32Array.from(new TextEncoder().encode(text)),
  encodeDocument: (text) => Int32Array.from(new TextEncoder().encode(text)),
  decode: (ids) => new TextDecoder().decode(Uint8Array.from(ids)),
};
