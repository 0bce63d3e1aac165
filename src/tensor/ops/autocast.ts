import { type Precision, computePrecision } from '../precision.js';
import type { Tensor } from '../tensor.js';
import { isGradEnabled } from '../autograd.js';
import { activeCastCache } from './cast_cache.js';
import { toBf16ForOneOp } from './cast.js';
import { frozenCastOf } from './cast_frozen.js';

/**
 * The lower-precision policy of a step (torch's autocast, docs/PRECISION.md): the ops on this list
 * take bfloat16 operands when the step computes in bf16; the policy inserts the casts before them
 * and the ops themselves only dispatch on their operands' dtype. Everything else (norms, softmax,
 * losses, the optimizer) stays float32, and master weights, gradients and optimizer state are
 * never cast: the casts are per op call, and their backward widens (cast.ts).
 */
export const LOWER_PRECISION_OPS = ['matmul', 'linear', 'conv2d', 'scaledDotProductAttention'] as const;

export type LowerPrecisionOp = (typeof LOWER_PRECISION_OPS)[number];

/** Which ops take bf16 operands under each precision the loop may choose (`--precision`). */
const POLICIES: Record<Precision, ReadonlySet<LowerPrecisionOp>> = {
  fp32: new Set(),
  bf16: new Set(LOWER_PRECISION_OPS),
};

/** Whether `op` takes bf16 operands in the current step (the policy its precision selects). */
export function lowersToBf16(op: LowerPrecisionOp): boolean {
  return POLICIES[computePrecision()].has(op);
}

/**
 * The operands `op` runs on: under a bf16 step, float32 operands become casts for that op (none
 * where one is float64; one already bfloat16, a weight a model holds in bf16 (generate/bf16_weights.ts),
 * stays as it is and the float32 ones beside it are cast). `op` names the list entry the
 * cast is for; it is typed to the list, so an op off it cannot ask. With grad off and a cast cache
 * in place (cast_cache.ts), a weight's cast is the cache's, made once; a frozen weight registered
 * with holdFrozenCasts (cast_frozen.ts) is cast once for every step while it stays frozen.
 */
export function autocast(op: LowerPrecisionOp, ...operands: Tensor[]): Tensor[] {
  if (!lowersToBf16(op) || !operands.every((t) => t.dtype === 'float32' || t.dtype === 'bfloat16') || operands.every((t) => t.dtype === 'bfloat16')) return operands;
  return operands.map((t) => (t.dtype === 'bfloat16' ? t : heldCastOf(t) ?? toBf16ForOneOp(t)));
}

/**
 * A float32 weight's bf16 cast held beyond one op call, as autocast takes it: the cast cache's
 * (grad off), or a frozen weight's (cast_frozen.ts); null where autocast would cast it for the call.
 */
export function heldCastOf(t: Tensor): Tensor | null {
  return (isGradEnabled() ? null : activeCastCache()?.castOf(t)) ?? frozenCastOf(t);
}
