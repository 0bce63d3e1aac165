/**
 * `info --model` (src/generate/weight_report.ts): from headers alone, a folder's bytes per dtype, what
 * each --quantize scheme would hold (its plan applied to the shapes), the KV cache a token adds; a
 * GGUF file's bytes per tensor type; what fine-tuning would hold (train/run/memory_estimate.ts);
 * and whether it fits the memory given.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatWeightReport, weightReport } from '../../src/generate/weight_report.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel, defaultSpec } from '../../src/nn/models/index.js';
import { quantizeModel } from '../../src/nn/quantize_model.js';
import { defaultConfig } from '../../src/train/run/config.js';
import { estimateTrainingMemory } from '../../src/train/run/memory_estimate.js';
import { CLI } from '../helpers/cli.js';
import { findPython } from '../helpers/python.js';
import { runReference } from '../helpers/python_reference.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bench/reference/hf_to_gguf.py');
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, '/opt/torchvenv/bin/python'], ['gguf', 'safetensors', 'numpy']);
const dir = mkdtempSync(join(tmpdir(), 'smol-weight-report-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const spec = defaultSpec('llama-tiny', [64], 256) as LlamaSpec;
const folder = join(dir, 'llama');
const model = createModel(spec, 1);
saveFolder(folder, model, spec);

describe('info --model', () => {
  it('a folder: its float32 bytes, each scheme\'s bytes as the model quantized at load holds them, the KV cache a token adds', async () => {
    const r = await weightReport(folder);
    const elements = model.namedParameters().reduce((n, [, p]) => n + p.size, 0);
    assert.deepEqual(r.formats, [{ format: 'F32', tensors: model.namedParameters().length, fileBytes: 4 * elements, heldBytes: 4 * elements }]);
    assert.equal(r.kvBytesPerToken, 2 * spec.layers * spec.kvHeads * spec.headDim * 4);
    for (const { scheme, heldBytes } of r.schemes) {
      const quantized = createModel(spec, 1);
      quantizeModel(quantized, spec, scheme);
      assert.equal(heldBytes, quantized.namedParameters().reduce((n, [, p]) => n + p.storage.byteLength, 0), scheme);
    }
    const text = formatWeightReport(r, 1e12);
    assert.match(text, /weights {4}F32 +\d+ tensors .* held/);
    assert.match(text, /memory .*: fits/);
    assert.match(formatWeightReport(r, 1000), /does not fit/);
    assert.match(text, /--quantize q4_k_m/);
  });

  it('a BF16 or F16 folder: its matrices held at 2 bytes (fp32 generation keeps them), its vectors widened to float32', async () => {
    for (const dtype of ['bf16', 'f16'] as const) {
      const half = join(dir, dtype);
      saveFolder(half, model, spec, { dtype });
      const r = await weightReport(half);
      const params = model.namedParameters();
      const [matrices, vectors] = [params.filter(([, p]) => p.ndim === 2), params.filter(([, p]) => p.ndim !== 2)];
      const count = (ps: typeof params): number => ps.reduce((n, [, p]) => n + p.size, 0);
      assert.deepEqual(r.formats, [{ format: dtype.toUpperCase(), tensors: params.length, fileBytes: 2 * count(params), heldBytes: 2 * count(matrices) + 4 * count(vectors) }], dtype);
    }
  });

  it('what fine-tuning it would hold per process, estimated before loading: full, LoRA, QLoRA', () => {
    const r = spawnSync(process.execPath, [CLI, 'info', '--model', folder, '--json'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const rows = (JSON.parse(r.stdout) as { fine_tuning: { method: string; estimated_bytes: number }[] }).fine_tuning;
    const bytes = new Map(rows.map((t) => [t.method, t.estimated_bytes]));
    assert.deepEqual([...bytes.keys()], ['full (float32, AdamW)', 'LoRA r=16 (float32 base)', 'LoRA r=16 (bf16 base)', 'QLoRA r=16 (nf4 at load)', 'QLoRA r=16 (q4_k_m at load)']);
    const targets = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
    const base = { ...defaultConfig('llama-tiny'), init: folder, optimizer: 'adamw' as const, batchSize: 1, activationCheckpointing: true };
    const window = Math.min(512, spec.context);
    assert.equal(bytes.get('full (float32, AdamW)'), estimateTrainingMemory(base, spec, window)!.total);
    assert.equal(bytes.get('QLoRA r=16 (nf4 at load)'), estimateTrainingMemory({ ...base, loraRank: 16, loraTargets: targets, loraBaseDtype: 'nf4' }, spec, window)!.total);
    assert.ok(bytes.get('LoRA r=16 (float32 base)')! < bytes.get('full (float32, AdamW)')!, 'LoRA keeps no state for the base');
    const text = spawnSync(process.execPath, [CLI, 'info', '--model', folder], { encoding: 'utf8', timeout: 60_000 }).stdout;
    assert.match(text, /fine-tune {2}QLoRA r=16 \(nf4 at load\) +\d+\.\d\d GiB a process/);
    // --lora-rank and --seq set what the rows assume (the issue's `info --model M --lora-rank 16 --seq 512`).
    const other = spawnSync(process.execPath, [CLI, 'info', '--model', folder, '--lora-rank', '4', '--seq', '16', '--json'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(other.status, 0, other.stderr);
    const set = new Map((JSON.parse(other.stdout) as { fine_tuning: { method: string; estimated_bytes: number }[] }).fine_tuning.map((t) => [t.method, t.estimated_bytes]));
    assert.equal(set.get('QLoRA r=4 (nf4 at load)'), estimateTrainingMemory({ ...base, loraRank: 4, loraTargets: targets, loraBaseDtype: 'nf4' }, spec, Math.min(16, spec.context))!.total);
    assert.match(spawnSync(process.execPath, [CLI, 'info', '--model', folder, '--seq', '0'], { encoding: 'utf8', timeout: 60_000 }).stderr, /--seq <n>' argument '0' is invalid\. expected a positive integer/);
  });

  it('a GGUF file: bytes per tensor type, its quantized ones held as they are', { skip: !PYTHON && 'no python with gguf' }, () => {
    const gguf = join(dir, 'llama-q8_0.gguf');
    const c = runReference({ python: PYTHON!, args: [SCRIPT, folder, gguf, '--dtype', 'q8_0'], outputs: [gguf], timeout: 120_000 });
    assert.equal(c.status, 0, c.stderr);
    const r = spawnSync(process.execPath, [CLI, 'info', '--model', gguf, '--json'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { formats: { format: string; tensors: number; fileBytes: number; heldBytes: number }[]; schemes: unknown[]; available_bytes: number };
    const matrices = model.namedParameters().filter(([, p]) => p.ndim === 2);
    assert.deepEqual(report.formats.find((f) => f.format === 'q8_0'), {
      format: 'q8_0', tensors: matrices.length, fileBytes: matrices.reduce((n, [, p]) => n + (p.size / 32) * 34, 0), heldBytes: matrices.reduce((n, [, p]) => n + (p.size / 32) * 34, 0),
    });
    assert.equal(report.formats.find((f) => f.format === 'F32')?.tensors, model.namedParameters().length - matrices.length);
    assert.deepEqual(report.schemes, [], 'a quantized file offers no --quantize');
    assert.deepEqual((report as unknown as { fine_tuning: { method: string }[] }).fine_tuning.map((t) => t.method), ['QLoRA r=16 over its blocks'], 'a quantized file fine-tunes with adapters only');
    assert.ok(report.available_bytes > 0);
  });
});
