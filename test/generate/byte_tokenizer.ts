/**
 * A byte-level BPE tokenizer.json of the 256 bytes and no merges: what a GGUF file of a 256-token
 * model carries (exportGguf writes byte-level BPE only). A fixture, not a test file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes it into `dir` as tokenizer.json; returns its path. */
export function writeByteTokenizer(dir: string): string {
  const printable = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  const chars = Array.from({ length: 256 }, (_, b) => String.fromCharCode(printable(b) ? b : next++));
  const path = join(dir, 'tokenizer.json');
  writeFileSync(path, JSON.stringify({ model: { type: 'BPE', vocab: Object.fromEntries(chars.map((c, i) => [c, i])), merges: [] }, pre_tokenizer: { type: 'ByteLevel' } }));
  return path;
}
