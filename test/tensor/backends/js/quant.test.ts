/**
 * The reference quant kernels (src/tensor/backends/js/quant.ts), reached as an op reaches them:
 * through the registry under the weight's format (dispatch.ts quantKernelsFor). Each is checked
 * against the same arithmetic written out here over dequantizeRows (formats.ts, which equals
 * gguf-py's dequantization): W's rows decoded exactly and every product summed in float64, so the
 * results must be equal bit for bit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quantKernelsFor, setBackend } from '../../../../src/tensor/dispatch.js';
import { QUANT_TYPES, type QuantType, dequantizeRows, quantBytes, quantFormat, quantizeRows } from '../../../../src/tensor/quant/formats.js';
import type { DeviceBuffer } from '../../../../src/tensor/storage.js';
import { Rng } from '../../../../src/util/rng.js';
import { ROWS8_OF } from '../../../../src/tensor/quant/rows8.js';

// The interleaved formats' rows come eight to a group (tensor/quant/rows8.ts): their own tests take whole groups.
const ROW_TYPES = QUANT_TYPES.filter((t) => !Object.hasOwn(ROWS8_OF, t));

const buf = (a: ArrayBufferView | null): DeviceBuffer => a as unknown as DeviceBuffer;
const [M, N] = [3, 5];

function gaussian(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** A [N, K] weight in `type` and its exact float32 rows. */
function weight(type: QuantType, K: number): { bytes: Uint8Array; dense: Float32Array } {
  const bytes = quantizeRows(type, gaussian(N * K, 7, 0.05), K);
  const dense = new Float32Array(N * K);
  dequantizeRows(type, bytes, K, 0, N, dense);
  return { bytes, dense };
}

/** K of two blocks of the format (a K-quant's block is 256 weights, the rest 32 or 64). */
const colsOf = (type: QuantType): number => 2 * quantFormat(type).blockWeights;

describe('js quant kernels, through the registry', () => {
  // The cpu's chosen backend serves the registry's quant entries: the native one, where it loads,
  // has its own (test/tensor/backends/quant_native.test.ts), so this file chooses js.
  setBackend('js');
  for (const type of ROW_TYPES) {
    const K = colsOf(type);
    it(`${type}: linear, its input gradient, dequantize and embedding are the exact products of the dequantized rows`, () => {
      const k = quantKernelsFor({ device: 'cpu', dtype: type });
      const { bytes, dense } = weight(type, K);
      const x = gaussian(M * K, 3);
      const bias = gaussian(N, 4);

      const y = new Float32Array(M * N);
      k.quantLinear(buf(bytes), buf(x), M, N, K, buf(y), buf(bias));
      const expected = new Float32Array(M * N);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let s = 0;
          for (let i = 0; i < K; i++) s += x[m * K + i] * dense[n * K + i];
          expected[m * N + n] = s + bias[n];
        }
      }
      assert.deepEqual(y, expected);

      const gy = gaussian(M * N, 5);
      const gx = Float32Array.from({ length: M * K }, (_, i) => i % 3); // accumulates into what is there
      const gxExpected = Float32Array.from(gx);
      for (let m = 0; m < M; m++) {
        for (let i = 0; i < K; i++) {
          let s = 0;
          for (let n = 0; n < N; n++) s += gy[m * N + n] * dense[n * K + i];
          gxExpected[m * K + i] += s;
        }
      }
      k.quantLinearInputGrad(buf(bytes), buf(gy), M, N, K, buf(gx));
      assert.deepEqual(gx, gxExpected);

      const rows = new Float32Array(2 * K);
      k.quantDequantize(buf(bytes), K, 2, 2, buf(rows));
      assert.deepEqual(rows, dense.subarray(2 * K, 4 * K));

      const ids = Int32Array.from([4, 0, 4]);
      const table = new Float32Array(3 * K);
      k.quantEmbedding(buf(bytes), buf(ids), K, buf(table));
      assert.deepEqual(table, Float32Array.from([...dense.subarray(4 * K), ...dense.subarray(0, K), ...dense.subarray(4 * K)]));
      assert.throws(() => k.quantEmbedding(buf(bytes), buf(Int32Array.from([5])), K, buf(new Float32Array(K))), /token id 5 is outside the table's 5 rows/);

      const q = new Uint8Array(quantBytes(type, N, K));
      k.quantQuantize(buf(dense), N, K, buf(q));
      assert.deepEqual(q, quantizeRows(type, dense, K));
    });
  }

  it('a linear without bias adds nothing', () => {
    const k = quantKernelsFor({ device: 'cpu', dtype: 'q8_0' });
    const { bytes, dense } = weight('q8_0', 64);
    const x = gaussian(64, 9);
    const y = new Float32Array(N);
    k.quantLinear(buf(bytes), buf(x), 1, N, 64, buf(y), null);
    let s = 0;
    for (let i = 0; i < 64; i++) s += x[i] * dense[i];
    assert.equal(y[0], Math.fround(s));
  });

  it('a device without the format\'s kernels is refused by name', () => {
    assert.throws(() => quantKernelsFor({ device: 'nowhere', dtype: 'q4_k' }),
      /no kernel "quantLinear" is registered for q4_k on device "nowhere".*q4_k weights run where a backend has their kernels/);
  });
});
