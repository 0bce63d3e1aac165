/**
 * The merges of a byte-level BPE model (GPT-2's, Llama 3's, Qwen's) applied to one pre-token,
 * over a ByteLevelVocab: each character becomes its id, then the adjacent pair of lowest
 * merge rank is merged, the leftmost first among equal ranks, until no pair has one — the order
 * Hugging Face's tokenizers merge in (a heap of rank and position, stale entries skipped). Merges
 * are held as ids in typed arrays, found by hashing the pair: a Qwen2.5 vocabulary's 151,387
 * cost 2.9 MB.
 */
import { DataError } from './errors.js';
import { emptySlots, type ByteLevelVocab } from './byte_level_vocab.js';

export class ByteLevelBpe {
  /** Merge `r` (its rank) joins `left[r]` and `right[r]` into `joined[r]`. */
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly joined: Int32Array;
  /** Open addressing on the pair: the merge found there, -1 where none. */
  private readonly pairs: Int32Array;
  private readonly pairMask: number;
  /** The id of each character of the byte-level alphabet (below U+0144), -1 where the vocabulary has none. */
  private readonly charIds = new Int32Array(0x144);
  // The merge loop's working arrays, grown to the longest pre-token seen.
  private symbols = new Int32Array(64);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);
  private heap = new Float64Array(3 * 64);

  /**
   * `merges` as a GGUF file holds them ("a b", rank by position; a pair given twice keeps its last
   * rank, as Hugging Face's do); a merge whose halves or result are not in `vocab` is refused,
   * naming `file` and the merge. `ignoreMerges`: a pre-token that is a whole token is that token
   * (Llama 3's tokenizer.json).
   */
  constructor(private readonly vocab: ByteLevelVocab, merges: readonly string[], private readonly ignoreMerges: boolean, file: string) {
    const n = merges.length;
    this.left = new Int32Array(n);
    this.right = new Int32Array(n);
    this.joined = new Int32Array(n);
    this.pairs = emptySlots(n);
    this.pairMask = this.pairs.length - 1;
    for (let r = 0; r < n; r++) this.enterMerge(r, merges[r], file);
    for (let c = 0; c < this.charIds.length; c++) this.charIds[c] = vocab.find(String.fromCharCode(c));
  }

  /** Appends the ids of `piece` (one pre-token, in byte-level characters) to `out`. */
  encode(piece: string, out: number[]): void {
    if (piece.length === 0) return;
    if (this.ignoreMerges) {
      const whole = this.vocab.find(piece);
      if (whole >= 0) {
        out.push(whole);
        return;
      }
    }
    const n = this.readSymbols(piece);
    this.mergeAll(n);
    // A character the vocabulary lacks merges with nothing and is dropped, as no unknown token is set.
    for (let i = 0; i >= 0; i = this.next[i]) if (this.symbols[i] >= 0) out.push(this.symbols[i]);
  }

  /** The pre-token's characters (code points) as ids, linked in order; their count. */
  private readSymbols(piece: string): number {
    this.reserve(piece.length);
    let n = 0;
    for (let i = 0; i < piece.length; i++) {
      const c = piece.charCodeAt(i);
      this.symbols[n] = c < this.charIds.length ? this.charIds[c] : -1;
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < piece.length) i++;
      this.prev[n] = n - 1;
      this.next[n] = n + 1;
      n++;
    }
    this.next[n - 1] = -1;
    return n;
  }

  private mergeAll(n: number): void {
    const { symbols, prev, next } = this;
    let size = 0;
    for (let i = 0; i + 1 < n; i++) size = this.pushPair(size, i, next[i]);
    while (size > 0) {
      const top = this.heap[0];
      size = this.popTop(size);
      const rank = Math.floor(top / POSITION_SPAN);
      const i = top - rank * POSITION_SPAN;
      const j = next[i];
      // Stale: the symbol was merged into its left neighbour, or its pair has changed since.
      if (symbols[i] === MERGED || j < 0 || this.rank(symbols[i], symbols[j]) !== rank) continue;
      symbols[i] = this.joined[rank];
      symbols[j] = MERGED;
      next[i] = next[j];
      if (next[i] >= 0) prev[next[i]] = i;
      if (prev[i] >= 0) size = this.pushPair(size, prev[i], i);
      if (next[i] >= 0) size = this.pushPair(size, i, next[i]);
    }
  }

  /** The rank of merging ids `a` and `b`, -1 where no merge joins them. */
  private rank(a: number, b: number): number {
    if (a < 0 || b < 0) return -1;
    for (let slot = pairHash(a, b) & this.pairMask; ; slot = (slot + 1) & this.pairMask) {
      const r = this.pairs[slot];
      if (r < 0 || (this.left[r] === a && this.right[r] === b)) return r;
    }
  }

  private enterMerge(r: number, merge: string, file: string): void {
    const space = merge.indexOf(' ');
    if (space <= 0 || space === merge.length - 1 || merge.indexOf(' ', space + 1) >= 0) {
      throw new DataError(file, `tokenizer.ggml.merges[${r}] is ${JSON.stringify(merge)}, not two tokens with a space between`);
    }
    const a = this.idOf(merge, 0, space, 0, 0, r, file);
    const b = this.idOf(merge, space + 1, merge.length, 0, 0, r, file);
    this.left[r] = a;
    this.right[r] = b;
    this.joined[r] = this.idOf(merge, 0, space, space + 1, merge.length, r, file);
    for (let slot = pairHash(a, b) & this.pairMask; ; slot = (slot + 1) & this.pairMask) {
      const held = this.pairs[slot];
      if (held < 0 || (this.left[held] === a && this.right[held] === b)) {
        this.pairs[slot] = r;
        return;
      }
    }
  }

  private idOf(merge: string, a0: number, a1: number, b0: number, b1: number, r: number, file: string): number {
    const id = this.vocab.findJoined(merge, a0, a1, b0, b1);
    if (id < 0) {
      const token = merge.slice(a0, a1) + merge.slice(b0, b1);
      throw new DataError(file, `tokenizer.ggml.merges[${r}] ${JSON.stringify(merge)} makes or joins ${JSON.stringify(token)}, which tokenizer.ggml.tokens does not hold`);
    }
    return id;
  }

  /** Pushes the pair starting at `i` (ending at `j`) where a merge joins it; the heap's new size. */
  private pushPair(size: number, i: number, j: number): number {
    const rank = this.rank(this.symbols[i], this.symbols[j]);
    if (rank < 0) return size;
    const heap = this.heap;
    const key = rank * POSITION_SPAN + i;
    let at = size;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (heap[parent] <= key) break;
      heap[at] = heap[parent];
      at = parent;
    }
    heap[at] = key;
    return size + 1;
  }

  /** Removes the smallest key; the heap's new size. */
  private popTop(size: number): number {
    const heap = this.heap;
    const last = heap[--size];
    let at = 0;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= size) break;
      if (child + 1 < size && heap[child + 1] < heap[child]) child++;
      if (heap[child] >= last) break;
      heap[at] = heap[child];
      at = child;
    }
    heap[at] = last;
    return size;
  }

  private reserve(length: number): void {
    if (length <= this.symbols.length) return;
    const size = 2 ** Math.ceil(Math.log2(length));
    this.symbols = new Int32Array(size);
    this.prev = new Int32Array(size);
    this.next = new Int32Array(size);
    // Each merge pushes at most two pairs: the heap never holds more than three a symbol.
    this.heap = new Float64Array(3 * size);
  }
}

/** A merged-away symbol (a character the vocabulary lacks is -1). */
const MERGED = -2;
/** A heap key is rank × 2³² + the pair's position: the lowest rank first, then the leftmost. */
const POSITION_SPAN = 2 ** 32;

function pairHash(a: number, b: number): number {
  const h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77);
  return h ^ (h >>> 15);
}
