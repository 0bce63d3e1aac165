import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type SaveDtype, loadSafetensors, saveSafetensors } from '../../../src/nn/interchange/model_io.js';
import { readSafetensors } from '../../../src/nn/interchange/safetensors.js';
import { type ModelSpec, createModel, defaultSpec } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { findPython } from '../../helpers/python.js';
import { runReference } from '../../helpers/python_reference.js';

/**
 * The exchange with PyTorch itself: each family is written as safetensors here and loaded with a
 * strict load_state_dict into a plain-torch model with Hugging Face / torchvision names
 * (torch_models.py), and a torch-made file is loaded here; both ways the same weights and inputs
 * give the same logits and loss within 1e-4 relative. Needs torch (Debian python3-torch); skipped
 * without it, except under CI=true, where .ci/run installs it and its absence is a failure.
 */
const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/nn/interchange/torch_models.py');
const PYTHON = findPython(['/usr/bin/python3', 'python3'], ['torch']);
if (!PYTHON && process.env.CI === 'true') throw new Error('torch_parity: no python3 with torch (CI installs python3-torch via .ci/run)');
const dir = mkdtempSync(join(tmpdir(), 'smol-parity-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface ModeResult { logits: number[]; loss: number }
type Modes = Record<string, ModeResult>;

/** Relative error of the logits as max|ours − torch| / max|torch| (the tensor's scale), and of the loss. */
function assertClose(ours: ModeResult, ref: ModeResult, what: string): void {
  assert.equal(ours.logits.length, ref.logits.length, `${what}: logit count`);
  const scale = Math.max(...ref.logits.map(Math.abs));
  let worstAbs = 0;
  ours.logits.forEach((v, i) => {
    worstAbs = Math.max(worstAbs, Math.abs(v - ref.logits[i]));
  });
  const worst = worstAbs / scale;
  assert.ok(worst < 1e-4, `${what}: logits differ by ${worst.toExponential(2)} relative`);
  const lossRel = Math.abs(ours.loss - ref.loss) / Math.abs(ref.loss);
  assert.ok(lossRel < 1e-4, `${what}: loss ${ours.loss} vs torch ${ref.loss} (${lossRel.toExponential(2)} relative)`);
}

function evaluate(model: Module, x: Tensor, labels: Int32Array, modes: string[]): Modes {
  const out: Modes = {};
  for (const mode of modes) {
    model.train(mode === 'train');
    const logits = noGrad(() => model.forward(x));
    const engineLabels = labels.map((l) => (l === -100 ? -1 : l));
    out[mode] = { logits: Array.from(logits.values()), loss: noGrad(() => crossEntropy(logits, engineLabels).item()) };
  }
  return out;
}

/** Both ways through safetensors; with `dtype` bf16 / f16 both files hold that dtype (published half-precision checkpoints) and both sides compute in fp32 on its values. */
function exchange(family: string, spec: ModelSpec, x: Tensor, labels: Int32Array, modes: string[], dtype: SaveDtype = 'fp32'): void {
  const saved = createModel(spec, 7);
  const ours = join(dir, `${family}-${dtype}-ours.safetensors`);
  const theirs = join(dir, `${family}-${dtype}-torch.safetensors`);
  const inputs = join(dir, `${family}-inputs.json`);
  saveSafetensors(ours, saved, spec, {}, dtype);
  // What the file holds: our weights as narrowed (the model itself keeps fp32).
  const model = dtype === 'fp32' ? saved : createModel(spec, 98);
  if (dtype !== 'fp32') loadSafetensors(ours, model, spec);
  writeFileSync(inputs, JSON.stringify({ x: Array.from(x.values()), shape: x.shape, labels: Array.from(labels), modes }));
  const r = runReference({ python: PYTHON!, args: [SCRIPT, family, JSON.stringify(spec), ours, inputs, theirs, dtype], outputs: [theirs], timeout: 120_000 });
  assert.equal(r.status, 0, `torch_models.py failed: ${r.stderr}`);
  const ref = JSON.parse(r.stdout) as { ours: Modes; theirs: Modes };
  if (dtype !== 'fp32') {
    const written = new Set([...readSafetensors(theirs).tensors.values()].map((t) => t.dtype));
    assert.ok(written.has(dtype === 'bf16' ? 'BF16' : 'F16') && !written.has('F32'), `torch wrote ${[...written].join(', ')}`);
  }
  const mine = evaluate(model, x, labels, modes);
  const loaded = createModel(spec, 99);
  loadSafetensors(theirs, loaded, spec);
  const fromTorch = evaluate(loaded, x, labels, modes);
  for (const mode of modes) {
    assertClose(mine[mode], ref.ours[mode], `${family} ${mode}: our weights in torch`);
    assertClose(fromTorch[mode], ref.theirs[mode], `${family} ${mode}: torch's weights here${dtype === 'fp32' ? '' : ` (${dtype})`}`);
  }
}

function tokens(n: number, t: number, vocab: number, seed: number): Tensor {
  const rng = new Rng(seed);
  return Tensor.from(Array.from({ length: n * t }, () => rng.int(vocab)), [n, t]);
}

describe('safetensors exchange with PyTorch (same logits and loss within 1e-4 relative)', { skip: PYTHON ? false : 'no python3 with torch' }, () => {
  it('gpt2 (Conv1D [in, out] weights, tied head, prefix-less names as in the published files)', () => {
    const spec = defaultSpec('gpt2-tiny', [8], 61, { layers: 2, width: 32, heads: 4, context: 16 });
    const x = tokens(2, 8, 61, 1);
    const labels = Int32Array.from(x.values(), (v, i) => (i % 8 === 7 ? -100 : (v + 3) % 61));
    exchange('gpt2', spec, x, labels, ['eval']);
  });

  it('bert masked LM (erf GELU, tied decoder, ignored positions)', () => {
    const spec = defaultSpec('bert-tiny', [8], 53, { layers: 2, width: 32, heads: 2, context: 16 });
    const x = tokens(2, 8, 53, 2);
    const labels = Int32Array.from(x.values(), (v, i) => (i % 3 === 0 ? v : -100));
    exchange('bert', spec, x, labels, ['eval']);
  });

  it('resnet (basic and bottleneck blocks; BatchNorm running statistics in eval mode, batch statistics in train mode)', () => {
    const x = Tensor.randn([3, 3, 16, 16], new Rng(3));
    const labels = Int32Array.from([0, 2, 1]);
    exchange('resnet', defaultSpec('resnet18', [3, 16, 16], 5, { width: 8 }), x, labels, ['eval', 'train']);
    exchange('resnet', defaultSpec('resnet50', [3, 16, 16], 5, { width: 4 }), x, labels, ['eval', 'train']);
  });

  it('half-precision checkpoints: gpt2 in BF16 and resnet in F16 (running statistics too), written by torch and by --save-dtype', () => {
    const spec = defaultSpec('gpt2-tiny', [8], 61, { layers: 2, width: 32, heads: 4, context: 16 });
    const x = tokens(2, 8, 61, 4);
    exchange('gpt2', spec, x, Int32Array.from(x.values(), (v) => (v + 5) % 61), ['eval'], 'bf16');
    exchange('resnet', defaultSpec('resnet18', [3, 16, 16], 5, { width: 8 }), Tensor.randn([2, 3, 16, 16], new Rng(5)), Int32Array.from([1, 4]), ['eval'], 'f16');
  });
});
