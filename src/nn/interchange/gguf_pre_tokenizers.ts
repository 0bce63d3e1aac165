/**
 * The pre-tokenizers llama.cpp names in `tokenizer.ggml.pre` (llama-vocab.cpp), each as the
 * Hugging Face tokenizer.json pre-tokenizer of the model family it stands for: what reading a GGUF
 * tokenizer rebuilds (data/gguf_tokenizer.ts) and what writing one names (gguf_export.ts).
 */

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
export const PRE_TOKENIZERS: Readonly<Record<string, { pre: object; normalizer?: object; ignoreMerges?: boolean }>> = {
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

