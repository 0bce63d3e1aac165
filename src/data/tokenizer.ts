/**
 * Text → token ids. `gpt2` is GPT-2's byte-pair encoding (50 257 tokens, the ids published GPT-2
 * weights expect) from js-tiktoken, which ships the vocabulary inside the package, so nothing is
 * downloaded; `bytes` is the UTF-8 bytes of the text (256 tokens), a fallback with no vocabulary.
 */
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2Ranks from 'js-tiktoken/ranks/gpt2';

export const TOKENIZERS = ['gpt2', 'bytes'] as const;
export type TokenizerName = (typeof TOKENIZERS)[number];

export interface Tokenizer {
  readonly name: TokenizerName;
  readonly vocabSize: number;
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
}

let gpt2: Tokenizer | null = null;

export function makeTokenizer(name: TokenizerName): Tokenizer {
  if (name === 'bytes') return BYTES;
  // Building the BPE tables takes about a second: once per process.
  gpt2 ??= gpt2Tokenizer();
  return gpt2;
}

function gpt2Tokenizer(): Tokenizer {
  const enc = new Tiktoken(gpt2Ranks);
  return {
    name: 'gpt2',
    vocabSize: 50257,
    // '<|endoftext|>' in a file is text, not the special token: tiktoken's default refuses it.
    encode: (text) => Int32Array.from(enc.encode(text, [], [])),
    decode: (ids) => enc.decode(Array.from(ids)),
  };
}

const BYTES: Tokenizer = {
  name: 'bytes',
  vocabSize: 256,
  encode: (text) => Int32Array.from(new TextEncoder().encode(text)),
  decode: (ids) => new TextDecoder().decode(Uint8Array.from(ids)),
};
