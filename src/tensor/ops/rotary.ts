import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError } from '../shape.js';
import { Tensor, allocUninit } from '../tensor.js';

/**
 * Rotary position embedding (RoPE) in Hugging Face's rotate_half layout: x [..., T, D] (the model
 * passes [N, H, T, D]), cos and sin [T, D/2] constants (never trained: no gradient reaches them).
 * For i < D/2: out[i] = x[i]·cos[t, i] − x[i + D/2]·sin[t, i], out[i + D/2] = x[i + D/2]·cos[t, i] +
 * x[i]·sin[t, i]. The backward turns the gradient back by the same angles; nothing is saved.
 */
export function rotary(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const shapes = [x.shape, cos.shape, sin.shape];
  if (x.ndim < 2) throw new ShapeError('rotary', 'x must be [..., T, D]', shapes);
  const [t, d] = x.shape.slice(-2);
  if (d % 2 !== 0 || d === 0) throw new ShapeError('rotary', `the head dimension D must be even and positive, got ${d}`, shapes);
  if (t === 0) throw new ShapeError('rotary', 'the sequence T is empty', shapes);
  for (const [name, table] of [['cos', cos], ['sin', sin]] as const) {
    if (table.ndim !== 2 || table.shape[0] !== t || table.shape[1] !== d / 2) {
      throw new ShapeError('rotary', `${name} must be [T, D/2] = [${t}, ${d / 2}] for x [..., ${t}, ${d}]`, shapes);
    }
    if (table.dtype !== x.dtype) throw new TypeError(`rotary: x is ${x.dtype} but ${name} is ${table.dtype}`);
    if (table.device !== x.device) throw new TypeError(`rotary: x is on "${x.device}" but ${name} on "${table.device}"`);
  }
  const slices = x.size / (t * d);
  const out = new Tensor(allocUninit(x.dtype, x.size, x.device), x.shape);
  const k = kernelsFor(x);
  k.rotary(x.buffer, cos.buffer, sin.buffer, slices, t, d, out.buffer);
  return record(out, 'rotary', [x], (gy) => {
    k.rotaryBackward(gy, cos.buffer, sin.buffer, slices, t, d, x.ensureGrad());
  }, false);
}
