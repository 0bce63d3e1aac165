/** A tiny served model for the server tests: random GPT-2 weights and a letters tokenizer (every id decodes to a letter). */
import { generate } from '../../src/generate/generate.js';
import type { ServedModel } from '../../src/serve/served_model.js';
import { randomModel } from '../generate/families.js';

export const CONTEXT = 64;

/** id → a letter (so texts are plain ASCII and stop strings easy to pick); a character → its code. */
export const letters = {
  vocabSize: 128,
  encode: (text: string): number[] => Array.from(text, (c) => c.charCodeAt(0) % 128),
  decode: (ids: ArrayLike<number>): string => Array.from(ids, (i) => String.fromCharCode(97 + (i % 26))).join(''),
};

export function tinyServed(seed = 5): ServedModel {
  const model = randomModel({ type: 'gpt2', vocabSize: 128, context: CONTEXT, layers: 2, width: 32, heads: 4, dropout: 0 }, seed);
  return { id: 'tiny', model, tokenizer: letters, eosIds: [], context: CONTEXT, chatTemplate: null };
}

/** What generate() alone gives `prompt` greedily, as text. */
export async function greedyAlone(served: ServedModel, prompt: string, maxNewTokens: number): Promise<string> {
  const r = await generate(served.model, letters.encode(prompt), { maxNewTokens });
  return letters.decode(r.ids);
}
