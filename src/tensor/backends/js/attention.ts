import { type AttentionGeometry, type Buf, kvSliceLength } from '../../backend.js';

/** Keys row i of a slice may see: all of them, or j <= i under a causal mask. */
const visibleKeys = (g: AttentionGeometry, i: number): number => (g.causal ? Math.min(i + 1, g.tk) : g.tk);

function dot(a: Buf, ao: number, b: Buf, bo: number, n: number): number {
  let s = 0;
  for (let t = 0; t < n; t++) s += a[ao + t] * b[bo + t];
  return s;
}

/** probs = softmax(scale · q kᵀ) with masked entries 0; out = (probs ∘ dropMask) v. Query slice b reads k/v slice floor(b / groups). */
export function attention(g: AttentionGeometry, q: Buf, k: Buf, v: Buf, dropMask: Buf | null, out: Buf, probs: Buf): void {
  const { bh, tq, tk, d, dv, scale } = g;
  const cap = kvSliceLength(g);
  for (let b = 0; b < bh; b++) {
    const kv = Math.floor(b / g.groups);
    for (let i = 0; i < tq; i++) {
      const lim = visibleKeys(g, i);
      const row = (b * tq + i) * tk;
      const qo = (b * tq + i) * d;
      let m = -Infinity;
      for (let j = 0; j < lim; j++) {
        const s = scale * dot(q, qo, k, (kv * cap + j) * d, d);
        probs[row + j] = s;
        if (s > m) m = s;
      }
      let sum = 0;
      for (let j = 0; j < lim; j++) {
        const e = Math.exp(probs[row + j] - m);
        probs[row + j] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let j = 0; j < lim; j++) probs[row + j] *= inv;
      for (let j = lim; j < tk; j++) probs[row + j] = 0;
      const oo = (b * tq + i) * dv;
      for (let c = 0; c < dv; c++) out[oo + c] = 0;
      for (let j = 0; j < lim; j++) {
        const p = dropMask ? probs[row + j] * dropMask[row + j] : probs[row + j];
        const vo = (kv * cap + j) * dv;
        for (let c = 0; c < dv; c++) out[oo + c] += p * v[vo + c];
      }
    }
  }
}

/**
 * With Pd = P ∘ M (M the dropout mask, all ones without dropout) and dPd = gy vᵀ:
 * gv += Pdᵀ gy; dS = P ∘ (M ∘ dPd) − P · rowsum(dPd ∘ Pd); gq += scale dS k; gk += scale dSᵀ q.
 * gk and gv of a k/v slice accumulate over the `groups` query slices that read it.
 */
export function attentionBackward(
  g: AttentionGeometry, q: Buf, k: Buf, v: Buf, probs: Buf, dropMask: Buf | null, gy: Buf,
  gq: Buf | null, gk: Buf | null, gv: Buf | null,
): void {
  const { bh, tq, tk, d, dv, scale } = g;
  const cap = kvSliceLength(g);
  const dpd = new Float64Array(tk);
  for (let b = 0; b < bh; b++) {
    const kv = Math.floor(b / g.groups);
    for (let i = 0; i < tq; i++) {
      const lim = visibleKeys(g, i);
      const row = (b * tq + i) * tk;
      const go = (b * tq + i) * dv;
      const qo = (b * tq + i) * d;
      let rowDot = 0;
      for (let j = 0; j < lim; j++) {
        const vo = (kv * cap + j) * dv;
        const pd = dropMask ? probs[row + j] * dropMask[row + j] : probs[row + j];
        if (gv) for (let c = 0; c < dv; c++) gv[vo + c] += pd * gy[go + c];
        dpd[j] = dot(gy, go, v, vo, dv);
        rowDot += dpd[j] * pd;
      }
      if (!gq && !gk) continue;
      for (let j = 0; j < lim; j++) {
        const p = probs[row + j];
        const ds = scale * (p * (dropMask ? dropMask[row + j] * dpd[j] : dpd[j]) - p * rowDot);
        const ko = (kv * cap + j) * d;
        if (gq) for (let c = 0; c < d; c++) gq[qo + c] += ds * k[ko + c];
        if (gk) for (let c = 0; c < d; c++) gk[ko + c] += ds * q[qo + c];
      }
    }
  }
}
