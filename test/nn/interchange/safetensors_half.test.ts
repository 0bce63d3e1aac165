/**
 * safetensors BF16 and F16 (published models ship in bf16): files we write with --save-dtype, and
 * files torch writes. The narrowing is torch's bit for bit (round to nearest even), widening is
 * exact both ways, and a model saved in bf16 loads back to its weights rounded to bf16. The torch
 * half needs a python with torch (Debian's python3-torch, or SMOLCLUSTER_PYTHON); skipped without
 * it, except under CI=true, where .ci/run installs python3-torch and its absence is a failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fromBf16Bits, fromF16Bits, toBf16Bits, toF16Bits } from '../../../src/util/float_formats.js';
import { initFromFile, saveSafetensors } from '../../../src/nn/interchange/model_io.js';
import { readSafetensors, toFloat32, writeSafetensors } from '../../../src/nn/interchange/safetensors.js';
import { createModel, defaultSpec } from '../../../src/nn/models/index.js';
import { Rng } from '../../../src/util/rng.js';
import { findPython } from '../../helpers/python.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/nn/interchange/torch_half.py');
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, '/usr/bin/python3', 'python3'], ['torch']);
if (!PYTHON && process.env.CI === 'true') throw new Error('safetensors_half: no python3 with torch (CI installs python3-torch via .ci/run)');
const dir = mkdtempSync(join(tmpdir(), 'smol-half-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const bitsOf = (x: Float32Array): number[] => [...new Uint32Array(x.buffer, x.byteOffset, x.length)];
const f32 = (bits: number): number => new Float32Array(new Uint32Array([bits]).buffer)[0];

/** Values that probe every edge of both formats, then ordinary weights. */
function probeValues(): Float32Array {
  const edges = [
    0, -0, 1, -2, 0.1, Math.PI, 1 + 2 ** -11, 1 + 3 * 2 ** -11, f32(0x3f808000), f32(0x3f818000), f32(0x3f808001),
    65504, 65519, 65520, 1e6, -1e6, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -30, 2 ** -126, 2 ** -133, f32(0x7f7fffff),
    Infinity, -Infinity, NaN, f32(0xffc00000),
  ];
  const rng = new Rng(7);
  const weights = Array.from({ length: 200 }, () => rng.normal() * 0.05);
  return Float32Array.from([...edges, ...weights]);
}

function sameFloat(a: number, b: number, what: string): void {
  if (Number.isNaN(a) || Number.isNaN(b)) assert.ok(Number.isNaN(a) && Number.isNaN(b), `${what}: ${a} vs ${b}`);
  else assert.ok(Object.is(a, b), `${what}: ${a} vs ${b}`);
}

describe('safetensors BF16 and F16', () => {
  it('writes and reads back BF16 and F16 tensors: the header names the dtype, the values are the rounded ones', () => {
    const x = probeValues();
    const file = join(dir, 'halves.safetensors');
    writeSafetensors(file, [['b', { shape: [x.length], data: x, dtype: 'BF16' }], ['h', { shape: [x.length], data: x, dtype: 'F16' }], ['f', { shape: [x.length], data: x }]]);
    const t = readSafetensors(file).tensors;
    assert.deepEqual([t.get('b')!.dtype, t.get('h')!.dtype, t.get('f')!.dtype], ['BF16', 'F16', 'F32']);
    assert.equal(t.get('b')!.bytes.length, 2 * x.length);
    const b = toFloat32(file, 'b', t.get('b')!);
    const h = toFloat32(file, 'h', t.get('h')!);
    x.forEach((v, i) => {
      sameFloat(b[i], fromBf16Bits(toBf16Bits(v)), `bf16 of ${v}`);
      sameFloat(h[i], fromF16Bits(toF16Bits(v)), `f16 of ${v}`);
    });
    assert.deepEqual(bitsOf(toFloat32(file, 'f', t.get('f')!)), bitsOf(x));
    // Known patterns on disk: 1.0 is 0x3f80 in bf16 and 0x3c00 in f16, little-endian.
    assert.equal(t.get('b')!.bytes.readUInt16LE(2 * 2), 0x3f80);
    assert.equal(t.get('h')!.bytes.readUInt16LE(2 * 2), 0x3c00);
  });

  it('--save-dtype bf16 / f16: every float tensor narrowed (num_batches_tracked stays I64); loading gives the rounded weights', () => {
    const spec = defaultSpec('resnet18', [3, 8, 8], 3, { width: 4 });
    const model = createModel(spec, 3);
    const weights = Float32Array.from(model.arena().params.readSync());
    for (const [dtype, narrow, widen, name] of [['bf16', toBf16Bits, fromBf16Bits, 'BF16'], ['f16', toF16Bits, fromF16Bits, 'F16']] as const) {
      const file = join(dir, `resnet-${dtype}.safetensors`);
      saveSafetensors(file, model, spec, {}, dtype);
      const dtypes = new Set([...readSafetensors(file).tensors.values()].map((t) => t.dtype));
      assert.deepEqual([...dtypes].sort(), [name, 'I64'].sort());
      const back = createModel(spec, 9);
      initFromFile(file, back, spec);
      const got = back.arena().params.readSync();
      weights.forEach((w, i) => assert.ok(Object.is(got[i], Math.fround(widen(narrow(w)))), `${dtype} weight ${i}: ${got[i]} vs ${w}`));
    }
    // The model's own fp32 weights are untouched by the narrowed save.
    assert.deepEqual(bitsOf(Float32Array.from(model.arena().params.readSync())), bitsOf(weights));
  });

  it('with torch: torch narrows to the same bits, its BF16/F16 file loads to its values, and it reads ours to ours', { skip: !PYTHON && 'no python3 with torch' }, () => {
    const x = probeValues();
    const values = join(dir, 'values.json');
    writeFileSync(values, JSON.stringify(bitsOf(x)));
    const ours = join(dir, 'ours.safetensors');
    const theirs = join(dir, 'theirs.safetensors');
    writeSafetensors(ours, [['bf16', { shape: [x.length], data: x, dtype: 'BF16' }], ['f16', { shape: [x.length], data: x, dtype: 'F16' }]]);
    const r = spawnSync(PYTHON!, [SCRIPT, values, ours, theirs], { encoding: 'utf8', maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { bf16_bits: number[]; f16_bits: number[]; ours: Record<string, { dtype: string; bits: number[] }>; hf_reads_ours?: Record<string, number[]> };
    x.forEach((v, i) => {
      // torch's bf16 NaN is always +0x7fc0: NaN-ness is what must agree.
      if (Number.isNaN(v)) assert.ok(Number.isNaN(fromBf16Bits(out.bf16_bits[i])));
      else assert.equal(toBf16Bits(v), out.bf16_bits[i], `bf16 of ${v}: ours 0x${toBf16Bits(v).toString(16)}, torch 0x${out.bf16_bits[i].toString(16)}`);
      assert.equal(toF16Bits(v), out.f16_bits[i], `f16 of ${v}: ours 0x${toF16Bits(v).toString(16)}, torch 0x${out.f16_bits[i].toString(16)}`);
    });
    const t = readSafetensors(theirs).tensors;
    assert.deepEqual([t.get('bf16')!.dtype, t.get('f16')!.dtype], ['BF16', 'F16']);
    const b = toFloat32(theirs, 'bf16', t.get('bf16')!);
    const h = toFloat32(theirs, 'f16', t.get('f16')!);
    x.forEach((_, i) => {
      sameFloat(b[i], fromBf16Bits(out.bf16_bits[i]), `torch's bf16 #${i}`);
      sameFloat(h[i], fromF16Bits(out.f16_bits[i]), `torch's f16 #${i}`);
    });
    for (const [name, mine] of [['bf16', b], ['f16', h]] as const) {
      const widened = Float32Array.from(out.ours[name].bits.map(f32));
      const expect = name === 'bf16' ? x.map((v) => fromBf16Bits(toBf16Bits(v))) : x.map((v) => fromF16Bits(toF16Bits(v)));
      widened.forEach((v, i) => sameFloat(v, expect[i], `torch reading our ${name} #${i}`));
      assert.equal(out.ours[name].dtype, name === 'bf16' ? 'BF16' : 'F16');
      assert.equal(mine.length, x.length);
    }
    // Where Hugging Face's safetensors package is installed: its writer's file and its reader of ours.
    if (out.hf_reads_ours) {
      const hf = readSafetensors(`${theirs}.hf`).tensors;
      assert.deepEqual(bitsOf(toFloat32(theirs, 'bf16', hf.get('bf16')!)), bitsOf(b));
      assert.deepEqual(bitsOf(toFloat32(theirs, 'f16', hf.get('f16')!)), bitsOf(h));
      assert.deepEqual(out.hf_reads_ours.bf16, out.ours.bf16.bits);
      assert.deepEqual(out.hf_reads_ours.f16, out.ours.f16.bits);
    }
  });
});
