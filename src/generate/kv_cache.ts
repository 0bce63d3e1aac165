/**
 * The key/value cache of generation. A SequenceCache holds one sequence's keys and values per
 * attention layer in preallocated storage, [Hkv, capacity, D] per layer, the capacity doubling as
 * it fills, so a decoded token is written in place at its position (no concatenation of the whole
 * cache each step). Grouped kv heads are cached once. A generation in bf16 on a backend with a bf16
 * decode attention caches them in bf16, as transformers' bf16 model does (half the memory, and the
 * values its attention op would have cast them to).
 *
 * A KvCache is one forward's view of a batch of sequences (its rows), each at its own length: the
 * models take their per-row positions from `offsets`, and every attention layer hands its new q, k,
 * v to `attend`, which stores k and v and runs attention per row over that row's own positions
 * (the cache's storage read in place: no padding, no mask). The
 * projections and MLP before and after run on all rows together: the shared weights are read once
 * per step for the whole batch, which is what batching buys at decode.
 */
import type { AttentionCache, DecodeSlot, KvShape } from '../nn/layers/attention.js';
import { noGrad } from '../tensor/autograd.js';
import type { AttentionGeometry, DecodeAttention, Kernels } from '../tensor/backend.js';
import { backendFor, kernelsFor } from '../tensor/dispatch.js';
import { scaledDotProductAttention } from '../tensor/ops/attention.js';
import { lowersToBf16 } from '../tensor/ops/autocast.js';
import { concat, reshape } from '../tensor/ops/layout.js';
import { type DeviceBuffer, type Storage, deviceMemory } from '../tensor/storage.js';
import { giveBack } from '../tensor/buffer_pool.js';
import { Tensor, allocUninit } from '../tensor/tensor.js';

/** The first capacity of a layer's cache, in positions (then doubled as needed). */
const FIRST_CAPACITY = 16;

/**
 * The length up to which a reply's cache is made whole at once whatever its prompt: below it, doubling
 * from a short prompt would grow the cache two or three times during the reply (each growth a new
 * cache zero-filled, the old one copied and left to the garbage collector, whose marking then ran in
 * the decode). SmolLM2-135M's Q4_0 file, a 32-token prompt and 128 new tokens (one thread, the AMD
 * EPYC, ten alternations of `/tmp` runs): no Mark-Compact during the decode where there were three
 * a generation, 1.3 % less wall time a token (median) and 2.0 % less CPU time (mean).
 */
const RESERVED_WHOLE = 256;

/**
 * The positions a batch-1 generation's cache is made for at once: its prompt and every new token,
 * where that is at most twice the prompt (no more than doubling could leave unused, were it to
 * stop early) or at most RESERVED_WHOLE positions, so the cache is never grown and copied; else
 * undefined, and it doubles as it fills.
 * A SmolLM2-135M prefill of 64 tokens grown to 128 positions left 2.9 MB of cache to the garbage
 * collector and held 5.9 MB; made for its 80 positions at once, it holds 3.7 MB.
 */
export function reservedPositions(promptLength: number, maxNewTokens: number): number | undefined {
  const total = promptLength + maxNewTokens;
  return total <= Math.max(2 * promptLength, RESERVED_WHOLE) ? total : undefined;
}

/** The capacity a batch-1 generation's cache ends at, when it makes every new token: what `reservedPositions` or doubling gives. */
export function finalCapacity(promptLength: number, maxNewTokens: number): number {
  return doubledTo(reservedPositions(promptLength, maxNewTokens) ?? FIRST_CAPACITY, promptLength + maxNewTokens);
}

/** `capacity`, doubled until it holds `needed` positions. */
function doubledTo(capacity: number, needed: number): number {
  while (capacity < needed) capacity *= 2;
  return capacity;
}

/** One layer's keys and values of one sequence: [heads, capacity, dim] each. */
export interface LayerSlot {
  k: Storage;
  v: Storage;
  heads: number;
  dim: number;
  capacity: number;
  /** Positions written (the sequence's length once the forward is advanced past). */
  written: number;
  /**
   * k and v hold bf16 values, two to a float32 element of their storage: a bf16 generation's cache,
   * which the backend's bf16 decode attention writes and reads (half a float32 cache's memory).
   */
  bf16: boolean;
}

/** The cache shape k [N, Hkv, T, D] asks for. */
function kvShapeOf(k: Tensor): KvShape {
  return { heads: k.shape[1], dim: k.shape[3], device: k.device, dtype: k.dtype };
}

/** A slot's storage elements per position: its dim, halved where two bf16 values share one. */
function widthOf(slot: { dim: number; bf16: boolean }): number {
  return slot.bf16 ? slot.dim / 2 : slot.dim;
}

/** A slot's k or v storage as the decode attention takes it: itself, or a bf16 cache's bf16 view (two values to a float32 element). */
function bf16Cached(kern: Pick<Kernels<DeviceBuffer>, 'bf16View'>, slot: LayerSlot): (s: Storage) => DeviceBuffer {
  return (s) => (slot.bf16 ? kern.bf16View(s.buffer, 0, slot.heads * slot.capacity * slot.dim) : s.buffer);
}

/** One row's decode attention over its slot: H query heads of one position against the slot's positions, read in place. */
function rowGeometry(H: number, D: number, slot: LayerSlot): AttentionGeometry {
  return { bh: H, groups: H / slot.heads, tq: 1, tk: slot.written, d: D, dv: D, scale: 1 / Math.sqrt(D), causal: false, kvCapacity: slot.capacity };
}

/** The backend's decode attention (backend.ts DecodeAttention) a forward's decode steps run, and its cache's kind. */
interface DecodeKernel {
  readonly attention: DecodeAttention<DeviceBuffer>['attentionDecode'];
  /** The cache holds bf16 (the kernel of the backend's bfloat16 entries). */
  readonly bf16: boolean;
}

/**
 * The decode attention for a layer's cache shape: under bf16 autocast the backend's bf16 one where
 * the keys can be cached in bf16 (dim even: two values to a float32 element), else its float32
 * one; null where the backend has none (the attention op or kernel runs instead, over a float32 cache).
 */
function decodeKernelFor(shape: KvShape): DecodeKernel | null {
  const backend = backendFor(shape);
  if (!lowersToBf16('scaledDotProductAttention')) return backend.attentionDecode ? { attention: backend.attentionDecode, bf16: false } : null;
  const bf16 = backend.bfloat16?.attentionDecode;
  return bf16 && shape.dim % 2 === 0 ? { attention: bf16, bf16: true } : null;
}

/** A [1, 1, length, D] tensor over head `h`'s first `length` positions of a slot's storage (no copy). */
function headPrefix(s: Storage, slot: LayerSlot, h: number, length: number): Tensor {
  return new Tensor(s.view(h * slot.capacity * slot.dim, length * slot.dim), [1, 1, length, slot.dim]);
}

/** One sequence's cached keys and values for every attention layer, and its length. */
export class SequenceCache {
  private readonly layers = new Map<object, LayerSlot>();
  private cached = 0;

  /** `reserved`: the positions each layer's cache is first made for, if the sequence's length is known (reservedPositions). */
  constructor(private readonly reserved?: number) {}

  /** Positions every layer holds: the next token's position. */
  get length(): number {
    return this.cached;
  }

  /**
   * Writes row `row` of k, v [N, Hkv, T, D] at this sequence's length (rounded to bf16 into a bf16
   * cache: `bf16`, which every forward of the sequence must ask alike); returns the layer's slot.
   */
  store(layer: object, k: Tensor, v: Tensor, row: number, bf16 = false): LayerSlot {
    const [, heads, T, dim] = k.shape;
    const slot = this.openSlot(layer, kvShapeOf(k), T, bf16);
    const kern = kernelsFor(k);
    const from = row * heads * T * dim;
    if (bf16) {
      for (const [src, dst] of [[k, slot.k], [v, slot.v]] as const) {
        for (let h = 0; h < heads; h++) {
          kern.toBf16(src.storage.view(from + h * T * dim, T * dim).buffer, kern.bf16View(dst.buffer, (h * slot.capacity + this.cached) * dim, T * dim));
        }
      }
    } else {
      const into = [slot.capacity * dim, dim, 1];
      kern.stridedCopy(k.buffer, from, [T * dim, dim, 1], slot.k.buffer, this.cached * dim, into, [heads, T, dim], false);
      kern.stridedCopy(v.buffer, from, [T * dim, dim, 1], slot.v.buffer, this.cached * dim, into, [heads, T, dim], false);
    }
    slot.written = this.cached + T;
    return slot;
  }

  /**
   * Room for one more position of `layer` (in a bf16 cache: `bf16`), counted as written: the
   * caller's kernel writes it (the decode attention stores the new k and v itself).
   */
  reserveNext(layer: object, shape: KvShape, bf16: boolean): LayerSlot {
    const slot = this.openSlot(layer, shape, 1, bf16);
    slot.written = this.cached + 1;
    return slot;
  }

  /** Moves the length past the `tokens` positions the last forward wrote to every layer. */
  advance(tokens: number): void {
    for (const slot of this.layers.values()) {
      if (slot.written !== this.cached + tokens) throw new Error(`KvCache: advance(${tokens}) from ${this.cached}, but a layer holds ${slot.written} positions`);
    }
    this.cached += tokens;
  }

  /**
   * A new sequence's cache holding a copy of this one's positions (a request's n choices: the
   * prompt prefilled once, its keys and values copied once to each other choice, never prefilled again).
   */
  copy(): SequenceCache {
    const twin = new SequenceCache();
    for (const [layer, slot] of this.layers) {
      const memory = deviceMemory(slot.k.device);
      const size = slot.heads * slot.capacity * widthOf(slot);
      const copied: LayerSlot = { ...slot, k: memory.alloc(slot.k.dtype, size), v: memory.alloc(slot.v.dtype, size) };
      const kern = kernelsFor(slot.k);
      const width = widthOf(slot);
      const strides = [slot.capacity * width, width, 1];
      for (const part of ['k', 'v'] as const) kern.stridedCopy(slot[part].buffer, 0, strides, copied[part].buffer, 0, strides, [slot.heads, slot.written, width], false);
      twin.layers.set(layer, copied);
    }
    twin.cached = this.cached;
    return twin;
  }

  /** Frees the storage (a GPU's memory; the cpu's is left to the garbage collector). */
  dispose(): void {
    for (const slot of this.layers.values()) {
      slot.k.dispose();
      slot.v.dispose();
    }
    this.layers.clear();
  }

  /** The layer's slot with room for `tokens` more positions at this sequence's length. */
  private openSlot(layer: object, shape: KvShape, tokens: number, bf16: boolean): LayerSlot {
    const slot = this.slotFor(layer, shape, this.cached + tokens, bf16);
    if (slot.written !== this.cached) throw new Error(`KvCache: a layer already holds ${slot.written} positions at offset ${this.cached} (call advance() after each forward)`);
    return slot;
  }

  /** The layer's slot with room for `needed` positions: made on first use (for the reserved positions where they are room enough), its capacity doubled when full. */
  private slotFor(layer: object, shape: KvShape, needed: number, bf16: boolean): LayerSlot {
    const { heads, dim } = shape;
    let slot = this.layers.get(layer);
    if (slot && (slot.heads !== heads || slot.dim !== dim)) throw new Error(`KvCache: a layer's keys were [${slot.heads} heads, ${slot.dim}] and are now [${heads}, ${dim}]`);
    if (slot && slot.bf16 !== bf16) {
      throw new Error(`KvCache: a layer's keys are cached in ${slot.bf16 ? 'bf16' : 'float32'} and a forward now asks for ${bf16 ? 'bf16' : 'float32'} (the compute precision changed within a sequence)`);
    }
    if (slot && needed <= slot.capacity) return slot;
    const capacity = doubledTo(slot?.capacity ?? (this.reserved !== undefined && this.reserved >= needed ? this.reserved : FIRST_CAPACITY), needed);
    const memory = deviceMemory(shape.device);
    const size = heads * capacity * widthOf({ dim, bf16 });
    const grown: LayerSlot = { k: memory.alloc(shape.dtype, size), v: memory.alloc(shape.dtype, size), heads, dim, capacity, written: slot?.written ?? 0, bf16 };
    if (slot) this.copyInto(slot, grown, shape);
    this.layers.set(layer, grown);
    return grown;
  }

  private copyInto(from: LayerSlot, to: LayerSlot, like: KvShape): void {
    const kern = kernelsFor(like);
    const width = widthOf(from);
    const shape = [from.heads, from.written, width];
    for (const part of ['k', 'v'] as const) {
      kern.stridedCopy(from[part].buffer, 0, [from.capacity * width, width, 1], to[part].buffer, 0, [to.capacity * width, width, 1], shape, false);
      from[part].dispose();
    }
  }
}

/** One forward's batch of sequences (rows), each continuing from its own length. */
export class KvCache implements AttentionCache {
  readonly rows: readonly SequenceCache[];
  readonly lastPositionOnly: boolean;

  /**
   * A batch of `rows` (default: one new, empty sequence). `lastPositionOnly`: the forward's logits
   * are each row's last position only (what generation reads), not every position's.
   */
  constructor(rows?: readonly SequenceCache[], options: { lastPositionOnly?: boolean } = {}) {
    this.rows = rows ?? [new SequenceCache()];
    this.lastPositionOnly = options.lastPositionOnly ?? false;
    if (this.rows.length === 0) throw new Error('KvCache: a batch needs at least one sequence');
  }

  get offsets(): readonly number[] {
    return this.rows.map((r) => r.length);
  }

  /** The first row's length: the next position of a batch of one. */
  get offset(): number {
    return this.rows[0].length;
  }

  /**
   * Stores `layer`'s new k, v [N, Hkv, T, D] and returns q's attention [N, H, T, D]. Several new
   * positions (a prefill) need every row empty: one causal attention. One new position per row (a
   * decode step) attends per row over that row's positions so far, all its kv heads in one call.
   */
  attend(layer: object, q: Tensor, k: Tensor, v: Tensor): Tensor {
    const [N, , T] = q.shape;
    if (N !== this.rows.length) throw new Error(`KvCache: the forward has ${N} rows but the cache ${this.rows.length}`);
    const decode = decodeKernelFor(kvShapeOf(k));
    if (T > 1) {
      const at = this.rows.find((r) => r.length > 0);
      if (at) throw new Error(`attention: a cached forward after the prefill takes one token at a time, got ${T} at position ${at.length}`);
      return noGrad(() => {
        this.rows.forEach((r, i) => r.store(layer, k, v, i, decode?.bf16 ?? false));
        return scaledDotProductAttention(q, k, v, { causal: true });
      });
    }
    return noGrad(() => {
      if (decode) return this.decodeThrough(decode, layer, q, k, v);
      return lowersToBf16('scaledDotProductAttention') ? this.decodePerHead(layer, q, k, v) : this.decodeRows(layer, q, k, v);
    });
  }

  reserveDecode(layer: object, shape: KvShape): DecodeSlot | null {
    const decode = decodeKernelFor(shape);
    if (this.rows.length !== 1 || !decode) return null;
    const slot = this.rows[0].reserveNext(layer, shape, decode.bf16);
    const cached = bf16Cached(kernelsFor(shape), slot);
    return { k: cached(slot.k), v: cached(slot.v), positions: slot.written, capacity: slot.capacity, bf16: decode.bf16 };
  }

  /**
   * A decode step's attention: per row, one kernel call over all its kv heads, reading the cache's
   * [Hkv, capacity, D] storage in place (kvCapacity) over the row's own length and writing the
   * row's [H, 1, D] straight into the output (no per-head calls, no concatenation). Where the
   * backend has no decode attention of its own (else decodeThrough, whose kernel stores k and v too).
   */
  private decodeRows(layer: object, q: Tensor, k: Tensor, v: Tensor): Tensor {
    const [N, H, , D] = q.shape;
    const slots = this.rows.map((r, i) => r.store(layer, k, v, i));
    const out = allocUninit(q.dtype, N * H * D, q.device);
    const probs = allocUninit(q.dtype, H * Math.max(...slots.map((s) => s.written)), q.device);
    const kern = kernelsFor(q);
    slots.forEach((slot, i) => {
      kern.attention(rowGeometry(H, D, slot), q.storage.view(i * H * D, H * D).buffer, slot.k.buffer, slot.v.buffer, null, out.view(i * H * D, H * D).buffer, probs.buffer);
    });
    giveBack(probs);
    return new Tensor(out, [N, H, 1, D]);
  }

  /**
   * A decode step through the backend's decode attention: per row one call, which stores the row's
   * new k and v into its cache (bf16 or float32) and attends over all its kv heads.
   */
  private decodeThrough(decode: DecodeKernel, layer: object, q: Tensor, k: Tensor, v: Tensor): Tensor {
    const [N, H, , D] = q.shape;
    const heads = k.shape[1];
    const kern = kernelsFor(k);
    const out = allocUninit('float32', N * H * D, q.device);
    const { attention, bf16 } = decode;
    this.rows.forEach((r, i) => {
      const slot = r.reserveNext(layer, kvShapeOf(k), bf16);
      const cached = bf16Cached(kern, slot);
      const newest = (t: Tensor): DeviceBuffer => t.storage.view(i * heads * D, heads * D).buffer;
      attention(rowGeometry(H, D, slot), q.storage.view(i * H * D, H * D).buffer, newest(k), newest(v), cached(slot.k), cached(slot.v), out.view(i * H * D, H * D).buffer);
    });
    return new Tensor(out, [N, H, 1, D]);
  }

  /**
   * The same through the attention op, per row and kv head, where the backend has no bf16 decode
   * attention: under bf16 autocast the op casts its operands and multiplies in bf16 (attentionBf16),
   * which the float32 strided kernel call does not.
   */
  private decodePerHead(layer: object, q: Tensor, k: Tensor, v: Tensor): Tensor {
    const [N, H, , D] = q.shape;
    const pieces: Tensor[] = [];
    this.rows.forEach((r, i) => {
      const slot = r.store(layer, k, v, i);
      const groups = H / slot.heads;
      for (let h = 0; h < slot.heads; h++) {
        const query = new Tensor(q.storage.view((i * H + h * groups) * D, groups * D), [1, groups, 1, D]);
        pieces.push(scaledDotProductAttention(query, headPrefix(slot.k, slot, h, slot.written), headPrefix(slot.v, slot, h, slot.written)));
      }
    });
    return reshape(pieces.length === 1 ? pieces[0] : concat(pieces, 0), [N, H, 1, D]);
  }

  /** Moves every row past the `tokens` positions the last forward wrote. */
  advance(tokens: number): void {
    for (const r of this.rows) r.advance(tokens);
  }
}
