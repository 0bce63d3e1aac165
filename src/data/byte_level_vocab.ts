/**
 * A byte-level BPE vocabulary held as bytes: every token's bytes packed into one array (a vocabulary
 * token's characters read as GPT-2's alphabet, an added token's text as UTF-8), so decoding is a
 * copy, and the vocabulary tokens found by hashing those bytes, looked up by their characters (a
 * pre-token, or a merge's two halves put together, without making that string). A Qwen2.5 file's
 * 151,936 tokens: 2.8 MB, where a Map of their strings costs ~60 bytes a token.
 */
import { CHAR_BYTE } from './byte_level_chars.js';

export class ByteLevelVocab {
  /** Token `id`'s bytes are `bytes[starts[id]..starts[id + 1])`. */
  private readonly bytes: Uint8Array;
  private readonly starts: Int32Array;
  /** Open addressing: the id of the vocabulary token hashed here, -1 where none. */
  private readonly slots: Int32Array;
  private readonly mask: number;

  /**
   * `tokens` by id, `added[id]` 1 where the token is added (text, not looked up by characters). A
   * vocabulary token with a character outside the alphabet cannot come out of a pre-token: it is
   * held as its UTF-8 for decoding (as Hugging Face's Rust decoder reads it) and never found. Of
   * tokens with equal characters the last is found, as `Object.fromEntries` keeps the last of equal keys.
   */
  constructor(tokens: readonly string[], added: Uint8Array) {
    const found = new Uint8Array(tokens.length);
    this.starts = new Int32Array(tokens.length + 1);
    let total = 0;
    for (let id = 0; id < tokens.length; id++) {
      found[id] = Number(!added[id] && inAlphabet(tokens[id]));
      this.starts[id + 1] = (total += found[id] ? tokens[id].length : Buffer.byteLength(tokens[id], 'utf8'));
    }
    this.bytes = new Uint8Array(total);
    // Written through one Buffer over the array: no buffer or view a token (a synthetic vocabulary's 49,152 made V8's heap grow 10 MB).
    const text = Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length);
    for (let id = 0; id < tokens.length; id++) {
      const at = this.starts[id];
      if (!found[id]) text.write(tokens[id], at, 'utf8');
      else for (let i = 0; i < tokens[id].length; i++) this.bytes[at + i] = CHAR_BYTE[tokens[id].charCodeAt(i)];
    }
    this.slots = emptySlots(tokens.length);
    this.mask = this.slots.length - 1;
    for (let id = 0; id < tokens.length; id++) if (found[id]) this.enter(id);
  }

  get size(): number {
    return this.starts.length - 1;
  }

  /** The id of the vocabulary token `s` (in the alphabet's characters), -1 where none. */
  find(s: string): number {
    return this.findJoined(s, 0, s.length, 0, 0);
  }

  /** The id of the vocabulary token `s.slice(a0, a1) + s.slice(b0, b1)`, -1 where none. */
  findJoined(s: string, a0: number, a1: number, b0: number, b1: number): number {
    let h = FNV_OFFSET;
    for (let i = a0; i < a1; i++) h = Math.imul(h ^ byteOf(s, i), FNV_PRIME);
    for (let i = b0; i < b1; i++) h = Math.imul(h ^ byteOf(s, i), FNV_PRIME);
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const id = this.slots[slot];
      if (id < 0) return -1;
      if (this.holdsJoined(id, s, a0, a1, b0, b1)) return id;
    }
  }

  /** Token `id`'s bytes (a view, not a copy). */
  bytesOf(id: number): Uint8Array {
    return this.bytes.subarray(this.starts[id], this.starts[id + 1]);
  }

  private enter(id: number): void {
    let h = FNV_OFFSET;
    for (let i = this.starts[id]; i < this.starts[id + 1]; i++) h = Math.imul(h ^ this.bytes[i], FNV_PRIME);
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const held = this.slots[slot];
      if (held < 0 || this.sameBytes(held, id)) {
        this.slots[slot] = id;
        return;
      }
    }
  }

  private sameBytes(a: number, b: number): boolean {
    const length = this.starts[a + 1] - this.starts[a];
    if (length !== this.starts[b + 1] - this.starts[b]) return false;
    for (let i = 0; i < length; i++) if (this.bytes[this.starts[a] + i] !== this.bytes[this.starts[b] + i]) return false;
    return true;
  }

  private holdsJoined(id: number, s: string, a0: number, a1: number, b0: number, b1: number): boolean {
    const start = this.starts[id];
    if (this.starts[id + 1] - start !== a1 - a0 + b1 - b0) return false;
    let at = start;
    for (let i = a0; i < a1; i++) if (this.bytes[at++] !== byteOf(s, i)) return false;
    for (let i = b0; i < b1; i++) if (this.bytes[at++] !== byteOf(s, i)) return false;
    return true;
  }
}

/**
 * An open-addressing table for `count` keys, every slot empty (-1): a power of two at least 1.5×
 * the keys, so it is at most two-thirds full and a linear probe stays short.
 */
export function emptySlots(count: number): Int32Array {
  return new Int32Array(2 ** Math.ceil(Math.log2(Math.max(2, count * 1.5)))).fill(-1);
}

function inAlphabet(token: string): boolean {
  for (let i = 0; i < token.length; i++) if (byteOf(token, i) < 0) return false;
  return true;
}

/** The byte character `i` of `s` stands for, -1 where it is outside the alphabet. */
function byteOf(s: string, i: number): number {
  const unit = s.charCodeAt(i);
  return unit < CHAR_BYTE.length ? CHAR_BYTE[unit] : -1;
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
