import { kernelsFor } from '../dispatch.js';
import type { Storage } from '../storage.js';
import { Tensor } from '../tensor.js';
import { roundedStorage } from './bf16.js';
import { frozenCastSource } from './cast_frozen.js';

/**
 * The cast to bfloat16 that autocast (autocast.ts) inserts before a lower-precision op: a bfloat16
 * tensor of x's values rounded (RNE), which the op then dispatches on by dtype (its 'bfloat16'
 * kernel entry: bf16 operands, float32 accumulation and output).
 *
 * Gradients stay float32 (autocast's rule): the cast's backward widens the op's gradient into x's,
 * and since widening a float32 gradient is the identity, the consuming op writes it into x's
 * gradient directly (its backward GEMMs' float32 output) and records x, not the cast, as its input.
 * So a cast is not a graph node of its own; an op that has no bfloat16 entry refuses it by name.
 * A cast made here is the caller's (it may feed several ops): the ops read it and leave it be.
 */
export function toBf16(x: Tensor): Tensor {
  if (x.dtype !== 'float32') throw new Error(`toBf16: casts a float32 tensor, got ${x.dtype}`);
  const cast = new Tensor(roundedStorage(kernelsFor(x), x.buffer, x.size, x.device), x.shape);
  sources.set(cast, x);
  return cast;
}

/**
 * toBf16 into `into`, a bfloat16 storage of x's size that the caller holds (a model's held casts
 * laid out in one block: generate/model_casts.ts).
 */
export function toBf16Into(x: Tensor, into: Storage): Tensor {
  if (x.dtype !== 'float32' || into.dtype !== 'bfloat16' || into.size !== x.size) {
    throw new Error(`toBf16Into: casts a float32 tensor into a bfloat16 storage of its size, got ${x.dtype} [${x.size}] into ${into.dtype} [${into.size}]`);
  }
  kernelsFor(x).toBf16(x.buffer, into.buffer);
  const cast = new Tensor(into, x.shape);
  sources.set(cast, x);
  return cast;
}

/**
 * A cast for one op only (autocast's): the op decides how long its memory lives (bf16.ts
 * `bf16Operand`): transient, handed back after the forward and made again from x by the backward,
 * unless the op keeps it as its saved tensor (handover.ts).
 */
export function toBf16ForOneOp(x: Tensor): Tensor {
  const cast = toBf16(x);
  forOneOp.add(cast);
  return cast;
}

/** Whether t is a cast made for the one op that reads it (the op may give its memory back). */
export function isForOneOp(t: Tensor): boolean {
  return forOneOp.has(t);
}

/**
 * One bf16 cast of an activation for every op that reads it (q, k and v and their adapters' A
 * products read one normed input): made on the first call, the same tensor on later calls while
 * x's storage and version stand. The caller's (toBf16): each reading op keeps it for its backward
 * instead of rounding x again, so x is rounded once a step, not once per product and again per
 * backward.
 */
export function sharedBf16(x: Tensor): Tensor {
  const prior = shared.get(x);
  if (prior && prior.storage === x.storage && prior.version === x.storage.version) return prior.cast;
  const cast = toBf16(x);
  shared.set(x, { storage: x.storage, version: x.storage.version, cast });
  return cast;
}

const shared = new WeakMap<Tensor, { storage: Storage; version: number | undefined; cast: Tensor }>();
const sources = new WeakMap<Tensor, Tensor>();
const forOneOp = new WeakSet<Tensor>();

/** The float32 tensor a cast was made from (a held frozen cast's too: cast_frozen.ts), or null for a bfloat16 tensor that is no cast. */
export function castSource(t: Tensor): Tensor | null {
  return sources.get(t) ?? frozenCastSource(t);
}

/** The tensor autograd sees for an operand: a cast's source (its gradient is the source's), else the operand. */
export function gradInput(t: Tensor): Tensor {
  return castSource(t) ?? t;
}
