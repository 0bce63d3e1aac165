import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError } from '../shape.js';
import { Tensor, allocStorage, allocUninit } from '../tensor.js';

/**
 * RMSNorm over the last dimension (Llama's norm, Hugging Face's LlamaRMSNorm):
 * y = x / sqrt(mean(x²) + eps) · weight, weight [lastDim]. One kernel each way; only the per-row
 * 1/rms is kept for the backward (with x itself), never x̂. Like layerNorm it is a float32 op under
 * a bf16 step (ops/autocast.ts), so it takes its input as the previous op left it.
 */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const cols = x.shape[x.ndim - 1];
  if (x.ndim < 1 || weight.ndim !== 1 || weight.size !== cols) {
    throw new ShapeError('rmsNorm', 'weight must be [C] for x [..., C]', [x.shape, weight.shape]);
  }
  if (cols === 0) throw new ShapeError('rmsNorm', 'the normalised dimension C is empty', [x.shape, weight.shape]);
  if (!(eps > 0 && Number.isFinite(eps))) throw new RangeError(`rmsNorm: eps must be a positive number, got ${eps}`);
  if (x.dtype !== weight.dtype) throw new TypeError(`rmsNorm: x is ${x.dtype} but weight is ${weight.dtype}`);
  if (x.device !== weight.device) throw new TypeError(`rmsNorm: x is on "${x.device}" but weight on "${weight.device}"`);
  const rows = x.size / cols;
  const out = new Tensor(allocUninit(x.dtype, x.size, x.device), x.shape);
  const invRms = allocStorage(x.dtype, rows, x.device).buffer;
  const k = kernelsFor(x);
  k.rmsNorm(x.buffer, rows, cols, weight.buffer, eps, out.buffer, invRms);
  return record(out, 'rmsNorm', [x, weight], (gy) => {
    k.rmsNormBackward(
      x.buffer, rows, cols, weight.buffer, invRms, gy,
      x.requiresGrad ? x.ensureGrad() : null, weight.requiresGrad ? weight.ensureGrad() : null,
    );
  }, false); // the backward reads x and 1/rms, never y
}
