/**
 * The reference quant kernels (tensor/quant/kernels.ts) in TypeScript: every product over W's rows
 * dequantized exactly (as gguf-py does) and summed in float64, so they are the exact products the
 * native kernels' bounds are measured against. One row of W is decoded at a time: never a dense
 * copy of the matrix.
 */
import type { QuantKernels } from '../../quant/kernels.js';
import { type QuantType, dequantizeRows, quantFormat, quantizeRows } from '../../quant/formats.js';

type Host = Float32Array | Uint8Array | Int32Array;

export function jsQuantKernels(type: QuantType): QuantKernels<Host> {
  const row = (w: Uint8Array, K: number, n: number, into: Float32Array): Float32Array => {
    dequantizeRows(type, w, K, n, 1, into);
    return into;
  };
  return {
    quantLinear(w, x, M, N, K, y, bias) {
      const wr = new Float32Array(K);
      const [xs, ys, b] = [x as Float32Array, y as Float32Array, bias as Float32Array | null];
      for (let n = 0; n < N; n++) {
        row(w as Uint8Array, K, n, wr);
        for (let m = 0; m < M; m++) {
          let s = 0;
          for (let k = 0, xo = m * K; k < K; k++) s += xs[xo + k] * wr[k];
          ys[m * N + n] = s + (b ? b[n] : 0);
        }
      }
    },
    quantLinearInputGrad(w, gy, M, N, K, gx) {
      const wr = new Float32Array(K);
      const [g, out] = [gy as Float32Array, gx as Float32Array];
      const acc = new Float64Array(M * K);
      for (let n = 0; n < N; n++) {
        row(w as Uint8Array, K, n, wr);
        for (let m = 0; m < M; m++) {
          const gmn = g[m * N + n];
          if (gmn === 0) continue;
          for (let k = 0, o = m * K; k < K; k++) acc[o + k] += gmn * wr[k];
        }
      }
      for (let i = 0; i < acc.length; i++) out[i] += acc[i];
    },
    quantDequantize(w, K, row0, rows, out) {
      dequantizeRows(type, w as Uint8Array, K, row0, rows, out as Float32Array);
    },
    quantQuantize(x, rows, K, out) {
      const bytes = quantizeRows(type, (x as Float32Array).subarray(0, rows * K), K);
      (out as Uint8Array).set(bytes);
    },
    quantEmbedding(w, ids, K, out) {
      const o = out as Float32Array;
      const idx = ids as Int32Array;
      const rowsInW = (w as Uint8Array).length / ((K / quantFormat(type).blockWeights) * quantFormat(type).blockBytes);
      for (let i = 0; i < idx.length; i++) {
        if (!(idx[i] >= 0 && idx[i] < rowsInW)) throw new RangeError(`embedding: token id ${idx[i]} is outside the table's ${rowsInW} rows`);
        dequantizeRows(type, w as Uint8Array, K, idx[i], 1, o.subarray(i * K, (i + 1) * K));
      }
    },
  };
}
