/**
 * A lossless, compact weight update for the rollout workers (issue 47: "only the adapters under
 * LoRA, a compact delta otherwise"): the XOR of the new float32 bit patterns with those the worker
 * holds, which after one optimizer step at GRPO's learning rates leaves the sign, the exponent and
 * the high mantissa bits of almost every weight as they were. Sent as
 *   - a bitmap of the words that changed (1 bit a weight),
 *   - the low 16 bits of each changed word's XOR (2 bytes a changed weight),
 *   - the words whose XOR reaches the high 16 bits: their indices and high halves;
 * 2 bytes a changed weight (6 more where its XOR carries into the high half) where the whole arena
 * takes 4, a bit for a weight the step left as it was: 0.56–0.59 of the arena after full
 * fine-tuning steps at --lr 1e-6 (docs/RL.md). Lossless: the worker's weights stay the trainer's
 * bit for bit, so synchronous mode still samples what the trainer's own process would. A delta names the version it applies to; a worker
 * holding another one refuses it (the pool sends whole weights to a worker it has not kept up).
 */
import { ProtocolError } from '../../util/errors.js';

export interface WeightDelta {
  /** Words in the arena. */
  words: number;
  /** Bit i set: word i changed. */
  changed: Uint32Array;
  /** The low 16 bits of each changed word's XOR, in word order. */
  low: Uint16Array;
  /** Changed words whose XOR has high bits, ascending. */
  escapeAt: Uint32Array;
  /** Those words' high 16 bits. */
  escapeHigh: Uint16Array;
}

/** What turns `before` into `after` (equal lengths), bit for bit: counted, then written (no per-weight garbage). */
export function weightDelta(before: Float32Array, after: Float32Array): WeightDelta {
  if (before.length !== after.length) throw new RangeError(`weightDelta: ${before.length} words before, ${after.length} after`);
  const [a, b] = [bitsOf(before), bitsOf(after)];
  let changes = 0;
  let escapes = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ^ b[i];
    if (x !== 0) changes++;
    if (x >>> 16 !== 0) escapes++;
  }
  const d: WeightDelta = {
    words: a.length, changed: new Uint32Array(Math.ceil(a.length / 32)), low: new Uint16Array(changes),
    escapeAt: new Uint32Array(escapes), escapeHigh: new Uint16Array(escapes),
  };
  let k = 0;
  let e = 0;
  for (let i = 0; i < a.length; i++) {
    const x = (a[i] ^ b[i]) >>> 0;
    if (x === 0) continue;
    d.changed[i >>> 5] |= 1 << (i & 31);
    d.low[k++] = x & 0xffff;
    if (x >>> 16 !== 0) {
      d.escapeAt[e] = i;
      d.escapeHigh[e++] = x >>> 16;
    }
  }
  return d;
}

/** Applies `d` to `values` in place; a delta whose parts disagree is refused, naming `from`. */
export function applyWeightDelta(values: Float32Array, d: WeightDelta, from: string): void {
  checkDelta(d, values.length, from);
  const bits = bitsOf(values);
  let k = 0;
  let e = 0;
  for (let w = 0; w < d.changed.length; w++) {
    let mask = d.changed[w];
    while (mask !== 0) {
      const bit = 31 - Math.clz32(mask & -mask);
      mask &= mask - 1;
      const i = w * 32 + bit;
      let x = d.low[k++];
      if (e < d.escapeAt.length && d.escapeAt[e] === i) x |= d.escapeHigh[e++] << 16;
      bits[i] ^= x;
    }
  }
  if (e !== d.escapeAt.length) throw new ProtocolError(`weight delta from ${from}: escape ${e} (word ${d.escapeAt[e]}) is not a changed word`);
}

/** The delta's parts add up: the bitmap covers `words`, one low half per set bit, escapes ascending inside. */
function checkDelta(d: WeightDelta, words: number, from: string): void {
  const bad = (why: string): ProtocolError => new ProtocolError(`weight delta from ${from}: ${why}`);
  if (d.words !== words) throw bad(`${d.words} words, this worker trains ${words}`);
  if (d.changed.length !== Math.ceil(words / 32)) throw bad(`a bitmap of ${d.changed.length} words for ${words} weights`);
  const tail = words % 32;
  if (tail !== 0 && d.changed[d.changed.length - 1] >>> tail !== 0) throw bad('its bitmap marks words past the arena');
  let set = 0;
  for (const m of d.changed) set += popcount(m);
  if (set !== d.low.length) throw bad(`${set} changed words but ${d.low.length} low halves`);
  if (d.escapeAt.length !== d.escapeHigh.length) throw bad(`${d.escapeAt.length} escape indices but ${d.escapeHigh.length} high halves`);
  for (let e = 0; e < d.escapeAt.length; e++) {
    if (d.escapeAt[e] >= words || (e > 0 && d.escapeAt[e] <= d.escapeAt[e - 1])) throw bad(`escape ${e} (word ${d.escapeAt[e]}) is out of order or past the arena`);
  }
}

function popcount(m: number): number {
  let n = 0;
  for (let x = m >>> 0; x !== 0; x &= x - 1) n++;
  return n;
}

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/** Bytes the delta travels in (its sections, padded to 4 as the wire pads them). */
export function deltaBytes(d: WeightDelta): number {
  const pad = (n: number): number => (n + 3) & ~3;
  return d.changed.byteLength + pad(d.low.byteLength) + d.escapeAt.byteLength + pad(d.escapeHigh.byteLength);
}
