/**
 * The llama family against transformers itself (LlamaForCausalLM, Qwen2ForCausalLM,
 * Qwen3ForCausalLM, eager attention, float32): the same weights and tokens give the same logits,
 * loss and gradients of every parameter within 1e-4 relative (measured ≈ 1e-6), for each variant —
 * Llama untied, Qwen2's q/k/v biases, Qwen3's q/k norms with head_dim ≠ width / heads, Llama 3's
 * rope scaling — so names, shapes, rotary layout, grouped queries and the tie are all Hugging
 * Face's. Runs where a Python with torch and transformers is found ($SMOLCLUSTER_PYTHON, the
 * project's venv /opt/torchvenv); skipped elsewhere.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type LlamaSpec, createModel, llamaSpec } from '../../../src/nn/index.js';
import type { Module } from '../../../src/nn/module.js';
import { backward } from '../../../src/tensor/autograd.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { findPython } from '../../helpers/python.js';
import { relError } from '../../helpers/tensors.js';
import { runReference } from '../../helpers/python_reference.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/nn/models/llama_reference.py');
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, '/opt/torchvenv/bin/python'], ['torch', 'transformers']);
const dir = mkdtempSync(join(tmpdir(), 'smol-llama-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const VOCAB = 48;
const [N, T] = [2, 12];
const tiny = (over: Partial<LlamaSpec>): LlamaSpec => ({ ...llamaSpec('llama-tiny', VOCAB, T), ...over });

const VARIANTS: [string, LlamaSpec][] = [
  ['llama, untied head', tiny({})],
  ['qwen2: q/k/v biases, tied', tiny({ modelType: 'qwen2', qkvBias: true, tieEmbeddings: true, ropeTheta: 1e6, rmsEps: 1e-6 })],
  ['qwen3: q/k norms, head_dim 32, tied', tiny({ modelType: 'qwen3', qkNorm: true, headDim: 32, tieEmbeddings: true, rmsEps: 1e-6 })],
  ['llama 3: rope scaling', tiny({ ropeTheta: 5e5, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 16 } })],
];

interface Ours { model: Module; logits: Float32Array; loss: number; input: object }
interface Reference { logits: number[]; loss: number; grads: Record<string, number[]> }

/** Our forward and backward on a variant, and what transformers is given to do the same. */
function ours(spec: LlamaSpec): Ours {
  const model = createModel(spec, 11);
  const rng = new Rng(5);
  const ids = Array.from({ length: N * T }, () => rng.int(VOCAB));
  const labels = Array.from({ length: N * T }, () => rng.int(VOCAB));
  const logits = model.forward(Tensor.from(ids, [N, T]));
  const loss = crossEntropy(logits, Int32Array.from(labels));
  backward(loss);
  const params = Object.fromEntries(model.namedParameters().map(([n, p]) => [n, { shape: p.shape, values: Array.from(p.values()) }]));
  return { model, logits: Float32Array.from(logits.values()), loss: loss.item(), input: { spec, ids, shape: [N, T], labels, params } };
}

describe('the llama family against transformers (logits, loss, gradients)', { skip: PYTHON ? false : 'no Python with torch and transformers (set SMOLCLUSTER_PYTHON)' }, () => {
  const runs = VARIANTS.map(([, spec]) => ours(spec));
  let refs: Reference[] = [];
  before(() => {
    const [input, output] = [join(dir, 'in.json'), join(dir, 'out.json')];
    writeFileSync(input, JSON.stringify(runs.map((r) => r.input)));
    const run = runReference({ python: PYTHON!, args: [SCRIPT, input, output], outputs: [output] });
    assert.equal(run.status, 0, run.stderr);
    refs = JSON.parse(readFileSync(output, 'utf8')) as Reference[];
  });

  VARIANTS.forEach(([name], i) => {
    it(name, () => {
      const [run, ref] = [runs[i], refs[i]];
      assert.ok(relError(run.logits, ref.logits) < 1e-4, `logits differ by ${relError(run.logits, ref.logits).toExponential(2)}`);
      assert.ok(Math.abs(run.loss - ref.loss) < 1e-4 * ref.loss, `loss ${run.loss} vs ${ref.loss}`);
      assert.deepEqual(Object.keys(ref.grads).sort(), run.model.namedParameters().map(([n]) => n).sort());
      for (const [param, p] of run.model.namedParameters()) {
        const err = relError(p.gradValues()!, ref.grads[param]);
        assert.ok(err < 1e-4, `${param}: gradient differs by ${err.toExponential(2)} relative`);
      }
    });
  });
});
