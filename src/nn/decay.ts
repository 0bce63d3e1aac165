import type { Tensor } from '../tensor/tensor.js';

/**
 * Which parameters weight decay applies to. The rule of GPT-2/BERT training recipes (and of
 * nanoGPT's `p.dim() >= 2`): weight matrices, convolution kernels and embedding tables decay;
 * 1-d parameters — biases and the gains/shifts of BatchNorm and LayerNorm — do not, since shrinking
 * them towards 0 only fights the normalisation. A layer may override the rule per parameter.
 */
export function decays(p: Tensor, override?: boolean): boolean {
  return override ?? p.ndim >= 2;
}
