import type { AdamHyper, Buf, SgdHyper } from '../../backend.js';

/** torch.optim.SGD: d = g + wd·p; buf = μ·buf + (1−τ)·d; step = nesterov ? d + μ·buf : buf. */
export function sgdStep(param: Buf, grad: Buf, momentumBuf: Buf | null, h: SgdHyper): void {
  const n = param.length;
  for (let i = 0; i < n; i++) {
    let d = grad[i] + h.weightDecay * param[i];
    if (h.momentum !== 0 && momentumBuf) {
      const b = h.firstStep ? d : h.momentum * momentumBuf[i] + (1 - h.dampening) * d;
      momentumBuf[i] = b;
      d = h.nesterov ? d + h.momentum * b : b;
    }
    param[i] -= h.lr * d;
  }
}

/** torch.optim.Adam (L2 into the gradient) and AdamW (decoupled decay), with bias correction. */
export function adamStep(param: Buf, grad: Buf, m: Buf, v: Buf, h: AdamHyper): void {
  const n = param.length;
  const bc1 = 1 - Math.pow(h.beta1, h.step);
  const bc2 = 1 - Math.pow(h.beta2, h.step);
  const stepSize = h.lr / bc1;
  const sqrtBc2 = Math.sqrt(bc2);
  const decay = h.decoupled ? 1 - h.lr * h.weightDecay : 1;
  const l2 = h.decoupled ? 0 : h.weightDecay;
  for (let i = 0; i < n; i++) {
    const g = grad[i] + l2 * param[i];
    const mi = h.beta1 * m[i] + (1 - h.beta1) * g;
    const vi = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + h.eps);
  }
}
