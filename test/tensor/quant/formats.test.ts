/**
 * The block formats (src/tensor/quant/) against gguf-py's `gguf.quants`, the byte-exact reference
 * for GGUF's types: our dequantization of any bytes (gguf-py's quantization, ours, random ones)
 * equals gguf-py's bit for bit; our quantization of the legacy types equals gguf-py's byte for byte
 * (both are ggml's quantize_row_*_ref); gguf-py has no K-quant quantizer, so ours is checked by
 * gguf-py dequantizing it and by its error against Q4_0's. Needs the torch venv's python with
 * `gguf` (SMOLCLUSTER_PYTHON); skipped without it, except under CI=true.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  QUANT_TYPES, type QuantType, bitsPerWeight, dequantizeRows, quantBytes, quantFormat, quantizeRows,
} from '../../../src/tensor/quant/formats.js';
import { readBf16, readF16 } from '../../../src/tensor/quant/half.js';
import { Rng } from '../../../src/util/rng.js';
import { findPython } from '../../helpers/python.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/tensor/quant/gguf_quants.py');
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, '/opt/torchvenv/bin/python'], ['gguf', 'numpy']);
if (!PYTHON && process.env.CI === 'true') throw new Error('quant formats: no python with gguf (CI builds /opt/torchvenv with it)');

const GGML_TYPES = QUANT_TYPES.filter((t) => quantFormat(t).ggmlType !== null);
const SAME_BYTES_AS_GGUF_PY: QuantType[] = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'f16'];
const COLS = 512;
const dir = mkdtempSync(join(tmpdir(), 'smol-quant-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Rows that reach every branch: Gaussian weights, outliers, zeros, a constant, tiny and huge values, all-negative. */
function testValues(): Float32Array {
  const rng = new Rng(11);
  const rows: number[][] = [];
  for (let r = 0; r < 10; r++) rows.push(Array.from({ length: COLS }, () => rng.normal() * 0.02));
  rows.push(Array.from({ length: COLS }, (_, i) => (i % 37 === 0 ? 3 : rng.normal() * 0.01)));
  rows.push(new Array(COLS).fill(0));
  rows.push(new Array(COLS).fill(0.125));
  rows.push(Array.from({ length: COLS }, () => rng.normal() * 1e-6));
  rows.push(Array.from({ length: COLS }, () => rng.normal() * 300));
  rows.push(Array.from({ length: COLS }, () => -Math.abs(rng.normal())));
  return Float32Array.from(rows.flat());
}

function runReference(folder: string, types: readonly string[]): void {
  const r = spawnSync(PYTHON!, [SCRIPT, folder, ...types], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `gguf_quants.py failed: ${r.stderr}`);
}

const floats = (file: string): Float32Array => {
  const b = readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
};
const bytes = (file: string): Uint8Array => new Uint8Array(readFileSync(file));

/** Bit equality, NaN equal to any NaN (random bytes make float16 NaNs). */
function assertSameBits(ours: Float32Array, theirs: Float32Array, what: string): void {
  assert.equal(ours.length, theirs.length, `${what}: length`);
  const a = new Uint32Array(ours.buffer, ours.byteOffset, ours.length);
  const b = new Uint32Array(theirs.buffer, theirs.byteOffset, theirs.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i] && !(Number.isNaN(ours[i]) && Number.isNaN(theirs[i]))) {
      assert.fail(`${what}: value ${i} (row ${Math.floor(i / COLS)}) is ${ours[i]} (0x${a[i].toString(16)}), gguf-py ${theirs[i]} (0x${b[i].toString(16)})`);
    }
  }
}

function dequantized(type: QuantType, q: Uint8Array, rows: number): Float32Array {
  const out = new Float32Array(rows * COLS);
  dequantizeRows(type, q, COLS, 0, rows, out);
  return out;
}

function rms(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

describe('quantized block formats against gguf-py', { skip: PYTHON ? false : 'no python with gguf (set SMOLCLUSTER_PYTHON)' }, () => {
  const values = testValues();
  const rows = values.length / COLS;
  const ours = new Map<QuantType, Uint8Array>();

  it('runs gguf-py on our values and bytes', () => {
    writeFileSync(join(dir, 'values.f32'), values);
    for (const t of GGML_TYPES) {
      ours.set(t, quantizeRows(t, values, COLS));
      writeFileSync(join(dir, `${t}.ours`), ours.get(t)!);
    }
    runReference(dir, GGML_TYPES);
  });

  for (const type of SAME_BYTES_AS_GGUF_PY) {
    it(`${type}: our quantization is gguf-py's byte for byte, and dequantizes as gguf-py does bit for bit`, () => {
      const theirs = bytes(join(dir, `${type}.quant`));
      assert.equal(theirs.length, quantBytes(type, rows, COLS));
      const mine = ours.get(type)!;
      const first = mine.findIndex((b, i) => b !== theirs[i]);
      assert.equal(first, -1, `${type}: byte ${first} (block ${Math.floor(first / quantFormat(type).blockBytes)}) differs`);
      assertSameBits(dequantized(type, theirs, rows), floats(join(dir, `${type}.dequant`)), `${type} dequantize`);
    });
  }

  for (const type of GGML_TYPES) {
    it(`${type}: gguf-py dequantizes our quantization to our values bit for bit`, () => {
      assertSameBits(dequantized(type, ours.get(type)!, rows), floats(join(dir, `${type}.ours.dequant`)), `${type} dequantize of our bytes`);
    });
  }

  it('dequantizes arbitrary bytes (every code, scale and bit position) as gguf-py does', () => {
    const random = join(dir, 'random');
    rmSync(random, { recursive: true, force: true });
    spawnSync('mkdir', ['-p', random]);
    writeFileSync(join(random, 'values.f32'), values);
    const rng = new Rng(5);
    const blobs = new Map<QuantType, Uint8Array>();
    for (const t of GGML_TYPES) {
      const blob = Uint8Array.from({ length: quantBytes(t, rows, COLS) }, () => Math.floor(rng.uniform() * 256));
      blobs.set(t, blob);
      writeFileSync(join(random, `${t}.ours`), blob);
    }
    runReference(random, GGML_TYPES);
    for (const t of GGML_TYPES) {
      assert.ok(existsSync(join(random, `${t}.ours.dequant`)));
      assertSameBits(dequantized(t, blobs.get(t)!, rows), floats(join(random, `${t}.ours.dequant`)), `${t} dequantize of random bytes`);
    }
  });
});

describe('quantized block formats', () => {
  const rng = new Rng(3);
  const gaussian = Float32Array.from({ length: 64 * COLS }, () => rng.normal() * 0.02);

  it('K-quants fit better than the legacy type of the same bits (ggml\'s reference fit)', () => {
    const err = (t: QuantType): number => rms(dequantized(t, quantizeRows(t, gaussian, COLS), 64), gaussian);
    // Q4_K (4.5 bits) against Q4_0 (4.5), Q5_K (5.5) against Q5_0 (5.5): the fitted scales and mins win.
    assert.ok(err('q4_k') < err('q4_0'), `q4_k ${err('q4_k')} vs q4_0 ${err('q4_0')}`);
    assert.ok(err('q5_k') < err('q5_0'), `q5_k ${err('q5_k')} vs q5_0 ${err('q5_0')}`);
    // More bits, less error, down the whole ladder.
    const ladder: QuantType[] = ['q4_k', 'q5_k', 'q6_k', 'q8_0'];
    for (let i = 1; i < ladder.length; i++) assert.ok(err(ladder[i]) < err(ladder[i - 1]), `${ladder[i]} vs ${ladder[i - 1]}`);
  });

  for (const type of ['mlx4', 'mlx8', 'mlx4_f16', 'mlx8_f16'] as const) {
    it(`${type}: each weight within half a step of its group's range, the edge of larger magnitude kept (to 16 bits)`, () => {
      const q = quantizeRows(type, gaussian, COLS);
      const back = dequantized(type, q, 64);
      const bins = type.startsWith('mlx4') ? 15 : 255;
      const { blockBytes } = quantFormat(type);
      const read = type.endsWith('_f16') ? readF16 : readBf16;
      for (let g = 0; g < gaussian.length / 64; g++) {
        const group = gaussian.subarray(64 * g, 64 * g + 64);
        const [s, b] = [read(q, g * blockBytes), read(q, g * blockBytes + 2)];
        // MLX puts zero on a code (the bias is the edge of larger magnitude, the scale divides it whole,
        // before both are rounded to 16 bits), so the other edge may fall outside the codes' range: it
        // then takes the nearest end.
        const [lo, hi] = [Math.min(b, b + s * bins), Math.max(b, b + s * bins)];
        for (let i = 0; i < 64; i++) {
          const inRange = Math.min(hi, Math.max(lo, group[i]));
          assert.ok(Math.abs(back[64 * g + i] - inRange) <= 0.5 * Math.abs(s) * (1 + 1e-5), `${type} group ${g} weight ${i}: ${group[i]} → ${back[64 * g + i]} (scale ${s}, bias ${b})`);
        }
        const edge = Math.abs(Math.min(...group)) > Math.abs(Math.max(...group)) ? Math.min(...group) : Math.max(...group);
        assert.ok(Math.abs(b - edge) <= Math.abs(edge) * 2 ** -8, `${type} group ${g}: bias ${b}, edge ${edge}`);
      }
    });
  }

  it('says what each format costs', () => {
    assert.deepEqual(
      Object.fromEntries(QUANT_TYPES.map((t) => [t, bitsPerWeight(t)])),
      { q8_0: 8.5, q4_0: 4.5, q4_1: 5, q5_0: 5.5, q5_1: 6, q4_k: 4.5, q5_k: 5.5, q6_k: 6.5625, mlx4: 4.5, mlx8: 8.5, mlx4_f16: 4.5, mlx8_f16: 8.5, nf4: 4.125, f16: 16, q4_0x8: 4.5, q8_0x8: 8.5, q5_0x8: 5.5, q4_kx8: 4.5, q6_kx8: 6.5625 },
    );
    assert.throws(() => quantBytes('q4_k', 2, 896, 'blk.0.attn_q.weight'), /blk\.0\.attn_q\.weight of 896 values is not a whole number of q4_k blocks \(256 weights each\)/);
  });
});
