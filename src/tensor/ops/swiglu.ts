import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, sameShape } from '../shape.js';
import { Tensor, allocUninit } from '../tensor.js';

/**
 * silu(gate) · up as one kernel: the gated product of a SwiGLU MLP (down(silu(gate(x)) · up(x))).
 * No silu(gate) tensor is made: the backward recomputes it from gate, which it keeps with up.
 */
export function siluMul(gate: Tensor, up: Tensor): Tensor {
  if (!sameShape(gate.shape, up.shape)) throw new ShapeError('siluMul', 'gate and up must have the same shape', [gate.shape, up.shape]);
  if (gate.dtype !== up.dtype) throw new TypeError(`siluMul: gate is ${gate.dtype} but up is ${up.dtype}`);
  if (gate.device !== up.device) throw new TypeError(`siluMul: gate is on "${gate.device}" but up on "${up.device}"`);
  const out = new Tensor(allocUninit(gate.dtype, gate.size, gate.device), gate.shape);
  const k = kernelsFor(gate);
  k.siluMul(gate.buffer, up.buffer, out.buffer);
  return record(out, 'siluMul', [gate, up], (gy) => {
    k.siluMulBackward(gate.buffer, up.buffer, gy, gate.requiresGrad ? gate.ensureGrad() : null, up.requiresGrad ? up.ensureGrad() : null);
  }, false);
}
