/**
 * The addon's K-quant quantizer (src/native/quant_quantize.cc) against the js reference
 * (tensor/quant/k_quants.ts, ggml's quantize_row_q{4,5,6}_K_ref): the same bytes for weights of
 * every kind a block meets — gaussian, spread over orders of magnitude, float32 subnormals (which
 * the flush mode our kernels run under reads as zero: without clearing it, Q4_K's and Q5_K's bytes
 * differ), all of one sign, mostly zero, integers, groups of one value beside others, and
 * blocks all zero or constant — on one thread and two (and, under SMOLCLUSTER_CPU=generic, the
 * scalar fit the vector one stands in for). Values it does not take (not finite, past 2^32) go to the reference, so the backend's
 * quantQuantize still gives its bytes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { quantizeOnCpu, setBackend } from '../../../src/tensor/dispatch.js';
import { loadNativeBackend, nativeInternals } from '../../../src/tensor/backends/native.js';
import { type QuantType, quantBytes, quantizeRows } from '../../../src/tensor/quant/formats.js';
import { Rng } from '../../../src/util/rng.js';

const loaded = loadNativeBackend();
const skip = loaded.backend ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${loaded.reason}`;
const K_QUANTS: readonly QuantType[] = ['q4_k', 'q5_k', 'q6_k'];
const [ROWS, COLS] = [12, 1024];

const KINDS: Record<string, (rng: Rng) => number> = {
  gaussian: (rng) => rng.normal() * 0.05,
  'orders of magnitude': (rng) => rng.normal() * Math.exp(rng.normal() * 3),
  subnormal: (rng) => rng.normal() * 1e-39,
  positive: (rng) => Math.abs(rng.normal()) + 0.5,
  negative: (rng) => -Math.abs(rng.normal()) - 0.5,
  'mostly zero': (rng) => (rng.uniform() < 0.9 ? 0 : rng.normal()),
  integers: (rng) => Math.round(rng.normal() * 4),
  'groups of one value beside others': groupsOfOneValue(),
};

/**
 * Within each super-block, groups of 32 all −0.7 (a Q4_K fit with no range), all 0.3 (whose min
 * moves to 0), below 1e-15 (a Q6_K group the fit leaves at 0) and gaussian side by side: the
 * vector fits (quant_fit_avx2.cc, a group a lane) mask the first and third kinds' lanes while the
 * others search.
 */
function groupsOfOneValue(): (rng: Rng) => number {
  let i = 0;
  return (rng) => {
    const kind = Math.floor(i++ / 32) % 4;
    return kind === 0 ? -0.7 : kind === 1 ? 0.3 : kind === 2 ? rng.normal() * 1e-17 : rng.normal() * 0.05;
  };
}

/** ROWS×COLS values of one kind, three super-blocks of them all zero, all 0.25 and all −3. */
function values(kind: (rng: Rng) => number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: ROWS * COLS }, () => kind(rng));
  [0, 0.25, -3].forEach((v, r) => x.fill(v, r * COLS + 256 * r, r * COLS + 256 * (r + 1)));
  return x;
}

describe('the native K-quant quantizer against the js reference', { skip }, () => {
  setBackend('native');
  const internals = nativeInternals()!;
  const host = loaded.backend!;

  test('the same bytes for every kind of weights, on one thread and two', () => {
    const threads = host.getThreads();
    try {
      for (const t of [1, 2]) {
        host.setThreads(t);
        for (const type of K_QUANTS) {
          for (const [name, kind] of Object.entries(KINDS)) {
            const x = values(kind, 3);
            const out = new Uint8Array(quantBytes(type, ROWS, COLS)).fill(0xaa);
            assert.equal(internals.quantizeRows(type, x, ROWS, COLS, out), true, `${type} ${name}`);
            assert.deepEqual(out, quantizeRows(type, x, COLS), `${type} ${name}, ${t} thread(s)`);
          }
        }
      }
    } finally {
      host.setThreads(threads);
    }
  });

  test('declines what it has no quantizer for, and values not finite or past 2^32, writing nothing', () => {
    const x = values(KINDS.gaussian, 4);
    const untouched = (type: QuantType, v: Float32Array): boolean => {
      const out = new Uint8Array(quantBytes(type, ROWS, COLS)).fill(0xaa);
      const took = internals.quantizeRows(type, v, ROWS, COLS, out);
      assert.ok(out.every((b) => b === 0xaa), `${type}: declined, yet wrote`);
      return !took;
    };
    for (const type of ['q8_0', 'q4_0', 'mlx4'] as const) assert.ok(untouched(type, x), type);
    for (const bad of [NaN, Infinity, -Infinity, 2 ** 32, -(2 ** 33)]) {
      const v = x.slice();
      v[ROWS * COLS - 5] = bad;
      assert.ok(untouched('q4_k', v), `q4_k with ${bad}`);
    }
  });

  test("the backend's quantize gives the reference's bytes either way (the addon's, or the reference's where it declines)", () => {
    for (const type of [...K_QUANTS, 'q5_0', 'q8_0'] as const) {
      const x = values(KINDS['orders of magnitude'], 5);
      x[7] = NaN;
      for (const v of [values(KINDS.gaussian, 6), x]) {
        const out = new Uint8Array(quantBytes(type, ROWS, COLS));
        quantizeOnCpu(type, v, ROWS, COLS, out);
        assert.deepEqual(out, quantizeRows(type, v, COLS), type);
      }
    }
  });

  test('refuses rows that are not whole super-blocks and buffers too short, by name', () => {
    const x = new Float32Array(2 * 384);
    assert.throws(() => internals.quantizeRows('q6_k', x, 2, 384, new Uint8Array(1000)), /K 384 is not whole blocks of 256/);
    assert.throws(() => internals.quantizeRows('q4_k', x, 4, 256, new Uint8Array(576)), /\bx\b/);
    assert.throws(() => internals.quantizeRows('q4_k', x, 3, 256, new Uint8Array(431)), /\bout\b/);
  });
});
