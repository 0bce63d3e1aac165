/**
 * bf16 casts of frozen float32 weights, made once and held across a bf16 training run's steps.
 *
 * autocast (autocast.ts) casts every float32 operand for each op call: right for a weight that
 * trains (its values move every step), wasted on a frozen one. LoRA leaves most of a model frozen
 * in float32 (the MLP, the tied embedding that is also the LM head): a bf16 step of the SmolLM2-135M
 * shape cast each MLP weight three times and the 49,152 × 576 head twice, every step. A weight
 * registered here (holdFrozenCasts) is cast on first use into memory of its own (outside the step's
 * recycler, whose buffers the next step reuses) and the cast reused while the weight stays frozen
 * and its version (Storage.version: writes through the handle) unmoved; a write casts again. Only
 * while the weight holds the storage it had when registered: one bound to other memory (ZeRO-3's
 * gathered windows, a new one each step, freed after use) is cast per product as before, so no
 * held cast keeps a window alive. The cast is marked unchanging, so its products may run on a
 * packed copy (packed_weights.ts). It costs 2 bytes per value while the weight lives (a weak map).
 *
 * The numbers are autocast's: the same round-to-nearest-even of the same float32 values.
 */
import { kernelsFor } from '../dispatch.js';
import { deviceMemory, type Storage } from '../storage.js';
import { Tensor } from '../tensor.js';
import { markUnchanging } from './packed_weights.js';

interface HeldCast {
  readonly version: number | undefined;
  readonly cast: Tensor;
}

/** Registered weights and the storage each held then (its own). */
const registered = new WeakMap<Tensor, Storage>();
const held = new WeakMap<Tensor, HeldCast>();
const sources = new WeakMap<Tensor, Tensor>();

/** Registers float32 weights whose bf16 casts a step may hold across steps while they are frozen (requiresGrad false). */
export function holdFrozenCasts(weights: Iterable<Tensor>): void {
  for (const w of weights) if (w.dtype === 'float32') registered.set(w, w.storage);
}

/** Whether w is registered (holdFrozenCasts). */
export function isHeldFrozen(w: Tensor): boolean {
  return registered.has(w);
}

/** w's held bf16 cast when w is registered, frozen and float32; else null (autocast casts it for the op). */
export function frozenCastOf(w: Tensor): Tensor | null {
  const storage = w.storage;
  if (registered.get(w) !== storage || w.requiresGrad || w.dtype !== 'float32') return null;
  const prior = held.get(w);
  if (prior && prior.version === storage.version) return prior.cast;
  const out = deviceMemory(w.device).alloc('bfloat16', w.size);
  kernelsFor(w).toBf16(w.buffer, out.buffer);
  const cast = new Tensor(out, w.shape);
  markUnchanging(cast);
  sources.set(cast, w);
  held.set(w, { version: storage.version, cast });
  return cast;
}

/** The frozen weight a held cast was made from, or null (cast.ts castSource consults it). */
export function frozenCastSource(t: Tensor): Tensor | null {
  return sources.get(t) ?? null;
}
