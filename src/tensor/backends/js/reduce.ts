import type { Buf } from '../../backend.js';

/** out[o, i] = sum_k x[o, k, i] over a [outer, n, inner] view. */
export function reduceSum(x: Buf, outer: number, n: number, inner: number, out: Buf): void {
  out.fill(0, 0, outer * inner);
  for (let o = 0; o < outer; o++) {
    const oo = o * inner;
    for (let k = 0; k < n; k++) {
      const xi = (o * n + k) * inner;
      for (let i = 0; i < inner; i++) out[oo + i] += x[xi + i];
    }
  }
}

/** out[o, i] = max_k x[o, k, i], argmax = first k attaining it (NaN propagates, as in torch). */
export function reduceMax(x: Buf, outer: number, n: number, inner: number, out: Buf, argmax: Int32Array): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let best = x[o * n * inner + i];
      let arg = 0;
      for (let k = 1; k < n && best === best; k++) {
        const v = x[(o * n + k) * inner + i];
        if (v > best || v !== v) {
          best = v;
          arg = k;
        }
      }
      out[o * inner + i] = best;
      argmax[o * inner + i] = arg;
    }
  }
}

/** gx[o, argmax[o, i], i] += gy[o, i]: the gradient flows to the first maximal element. */
export function reduceMaxBackward(gy: Buf, argmax: Int32Array, outer: number, n: number, inner: number, gx: Buf): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) gx[(o * n + argmax[o * inner + i]) * inner + i] += gy[o * inner + i];
  }
}
