/**
 * The reference quant kernels (tensor/quant/kernels.ts) in TypeScript: every product over W's rows
 * dequantized exactly (as gguf-py does) and summed in float64, so they are the exact products the
 * native kernels' bounds are measured against. One row of W is decoded at a time: never a dense
 * copy of the matrix. Under a bf16 step (`bf16`) x, gy and each row of W are rounded to bf16 first,
 * the operands autocast gives a float32 weight's product.
 */
import type { QuantKernels } from '../../quant/kernels.js';
import { type QuantType, dequantizeRows, quantFormat, quantizeRows } from '../../quant/formats.js';
import { rounded } from './bf16.js';

type Host = Float32Array | Uint8Array | Int32Array;

export function jsQuantKernels(type: QuantType): QuantKernels<Host> {
  const row = (w: Uint8Array, K: number, n: number, into: Float32Array, bf16: boolean): Float32Array => {
    dequantizeRows(type, w, K, n, 1, into);
    return bf16 ? rounded(into) : into;
  };
  const operand = (t: Float32Array, length: number, bf16: boolean): Float32Array => (bf16 ? rounded(t.subarray(0, length)) : t);
  return {
    quantLinear(w, x, M, N, K, y, bias, _exact, bf16 = false) {
      const wf = new Float32Array(K);
      const [xs, ys, b] = [operand(x as Float32Array, M * K, bf16), y as Float32Array, bias as Float32Array | null];
      for (let n = 0; n < N; n++) {
        const wr = row(w as Uint8Array, K, n, wf, bf16);
        for (let m = 0; m < M; m++) {
          let s = 0;
          for (let k = 0, xo = m * K; k < K; k++) s += xs[xo + k] * wr[k];
          ys[m * N + n] = s + (b ? b[n] : 0);
        }
      }
    },
    quantLinearInputGrad(w, gy, M, N, K, gx, bf16 = false) {
      const wf = new Float32Array(K);
      const [g, out] = [operand(gy as Float32Array, M * N, bf16), gx as Float32Array];
      const acc = new Float64Array(M * K);
      for (let n = 0; n < N; n++) {
        const wr = row(w as Uint8Array, K, n, wf, bf16);
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
