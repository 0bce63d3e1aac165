/**
 * crossEntropy against torch.nn.functional.cross_entropy on the same float32 logits: the ignore
 * label -100 (and a class-index ignore_index), label_smoothing, an upstream gradient other than 1,
 * the logits a leaf or an intermediate (the in-place gradient path); loss and logits' gradient on
 * every backend. One Python process computes every case; skipped without a Python with torch
 * ($SMOLCLUSTER_PYTHON, the project's venv /opt/torchvenv), except under CI=true.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { type CrossEntropyOptions, Tensor, affine, backward, crossEntropy } from '../../../src/tensor/index.js';
import { assertValues, gradOf, itemOf, tensor } from '../../helpers/on_device.js';
import { findPython } from '../../helpers/python.js';
import { runReference } from '../../helpers/python_reference.js';
import { Rng, leaf, randn } from '../../helpers/tensors.js';

// find_spec, not `import torch`: an import alone costs seconds.
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, '/opt/torchvenv/bin/python'], ['torch']);
if (!PYTHON && process.env.CI === 'true') throw new Error('loss_torch: no Python with torch (set SMOLCLUSTER_PYTHON)');

const SCRIPT = `
import json, sys, torch
import torch.nn.functional as F
out = []
for c in json.load(sys.stdin):
    x = torch.tensor(c['logits'], dtype=torch.float32).reshape(c['shape']).requires_grad_()
    y = torch.tensor(c['labels'])
    loss = F.cross_entropy(x.reshape(-1, c['shape'][-1]), y, ignore_index=c['ignoreIndex'], label_smoothing=c['smoothing'])
    (loss * c['upstream']).backward()
    out.append({'loss': loss.item(), 'grad': x.grad.flatten().tolist()})
print(json.dumps(out))
`;

interface Case { name: string; shape: number[]; labels: number[]; options: CrossEntropyOptions; upstream: number; intermediate: boolean }

const CASES: Case[] = [
  { name: 'ignore label -100', shape: [7, 11], labels: [3, -100, 0, 10, -100, 5, 5], options: {}, upstream: 1, intermediate: false },
  { name: '-100, label smoothing 0.1, an intermediate', shape: [7, 11], labels: [3, -100, 0, 10, -100, 5, 5], options: { labelSmoothing: 0.1 }, upstream: 1, intermediate: true },
  { name: 'label smoothing 0.25, upstream 2.5, 3-d logits', shape: [2, 3, 9], labels: [8, 0, -100, 4, 4, 1], options: { labelSmoothing: 0.25 }, upstream: 2.5, intermediate: true },
  { name: 'ignoreIndex 2 (a class index) with smoothing 0.2', shape: [5, 6], labels: [2, 1, 2, 5, 0], options: { ignoreIndex: 2, labelSmoothing: 0.2 }, upstream: 1, intermediate: false },
];

const rng = new Rng(41);
const inputs = CASES.map((c) => [...randn(c.shape, rng, 'float32', 3).values()]);

/** torch's loss and gradient for every case, from one Python process. */
function torchResults(): { loss: number; grad: number[] }[] {
  const cases = CASES.map((c, i) => ({
    logits: inputs[i], shape: c.shape, labels: c.labels, upstream: c.upstream,
    ignoreIndex: c.options.ignoreIndex ?? -100, smoothing: c.options.labelSmoothing ?? 0,
  }));
  const run = runReference({ python: PYTHON!, args: ['-c', SCRIPT], input: JSON.stringify(cases), timeout: 120_000 });
  assert.equal(run.status, 0, `torch failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}
const theirs = PYTHON ? torchResults() : [];

describe('crossEntropy against torch.nn.functional.cross_entropy', { skip: PYTHON ? false : 'no Python with torch (set SMOLCLUSTER_PYTHON)' }, () => {
  CASES.forEach((c, i) => {
    it(c.name, async () => {
      const x = leaf(tensor(inputs[i], c.shape, 'float32'));
      const input = c.intermediate ? affine(x, 1, 0) : x;
      const loss = crossEntropy(input, Int32Array.from(c.labels), c.options);
      assertValues([await itemOf(loss)], [theirs[i].loss], { rtol: 1e-5 }, 'float32');
      backward(c.upstream === 1 ? loss : affine(loss, c.upstream, 0));
      assertValues(await gradOf(x), theirs[i].grad, { rtol: 1e-4, atol: 1e-6 }, 'float32');
    });
  });
  it('labels as an int32 tensor on the device give torch\'s numbers too', async () => {
    const c = CASES[1];
    const x = leaf(tensor(inputs[1], c.shape, 'float32'));
    const labels = Tensor.fromHost(Int32Array.from(c.labels), [c.labels.length], false, x.device);
    const loss = crossEntropy(x, labels, { ...c.options, scored: c.labels.filter((l) => l !== -100).length });
    assertValues([await itemOf(loss)], [theirs[1].loss], { rtol: 1e-5 }, 'float32');
    backward(loss);
    assertValues(await gradOf(x), theirs[1].grad, { rtol: 1e-4, atol: 1e-6 }, 'float32');
  });
});
