/**
 * --label-smoothing (issue 33 §6): the training cross-entropy equals torch's
 * F.cross_entropy(label_smoothing=ε) within 1e-5 on a fixed classification batch and a token batch
 * with ignored positions (one Python process computes every case; skipped without a Python with
 * torch, except under CI=true); the loop's first step carries it; evaluation keeps the plain loss.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { IGNORE_INDEX } from '../../../src/data/dataset.js';
import type { ClassificationBatch, TokenBatch } from '../../../src/data/loader.js';
import { BatchLoader } from '../../../src/data/loader.js';
import { DistributedSampler } from '../../../src/data/sampler.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { createModel } from '../../../src/nn/models/index.js';
import { type StepRecord, specFor, train } from '../../../src/train/loop/loop.js';
import { batchInput, batchLoss, withLabelSmoothing } from '../../../src/train/loop/objective.js';
import { defaultConfig } from '../../../src/train/run/config.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import { Rng } from '../../../src/util/rng.js';
import { findPython } from '../../helpers/python.js';
import { splitTrainTest } from '../../helpers/split.js';

// find_spec, not `import torch`: an import alone costs seconds.
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, '/opt/torchvenv/bin/python'], ['torch']);
if (!PYTHON && process.env.CI === 'true') throw new Error('label_smoothing: no Python with torch (set SMOLCLUSTER_PYTHON)');

const SCRIPT = `
import json, sys, torch
import torch.nn.functional as F
out = []
for c in json.load(sys.stdin):
    x = torch.tensor(c['logits'], dtype=torch.float32).reshape(-1, c['classes'])
    out.append(F.cross_entropy(x, torch.tensor(c['labels']), ignore_index=-100, label_smoothing=c['eps']).item())
print(json.dumps(out))
`;

const rng = new Rng(5);
const values = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal() * 3);

const images = syntheticClassification({ seed: 1, samples: 6, inputShape: [4], numClasses: 5 });
const imageBatch: ClassificationBatch = { size: 6, indices: Int32Array.of(0, 1, 2, 3, 4, 5), inputs: images.inputs, labels: images.labels };
const imageLogits = values(6 * 5);
const tokens = { task: 'language-model' as const, name: 'tokens', size: 2, inputShape: [4] as const, vocabSize: 7, inputs: new Int32Array(8), labels: Int32Array.of(3, 6, IGNORE_INDEX, 0, 1, IGNORE_INDEX, IGNORE_INDEX, 5) };
const tokenBatch: TokenBatch = { size: 2, indices: Int32Array.of(0, 1), inputs: tokens.inputs, labels: tokens.labels };
const tokenLogits = values(8 * 7);

const CASES = [
  { name: 'classification, ε 0.1', data: images, batch: imageBatch, logits: imageLogits, shape: [6, 5], eps: 0.1 },
  { name: 'tokens with ignored positions, ε 0.2', data: tokens, batch: tokenBatch, logits: tokenLogits, shape: [2, 4, 7], eps: 0.2 },
  { name: 'classification, ε 0 (the set as it is)', data: images, batch: imageBatch, logits: imageLogits, shape: [6, 5], eps: 0 },
];

function torchLosses(): number[] {
  const input = CASES.map((c) => ({ logits: [...c.logits], classes: c.shape.at(-1), labels: [...c.batch.labels], eps: c.eps }));
  const run = spawnSync(PYTHON!, ['-c', SCRIPT], { input: JSON.stringify(input), encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, `torch failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}
const theirs = PYTHON ? torchLosses() : [];

describe('--label-smoothing equals torch\'s label_smoothing', { skip: PYTHON ? false : 'no Python with torch (set SMOLCLUSTER_PYTHON)' }, () => {
  CASES.forEach((c, i) => {
    it(c.name, () => {
      const loss = batchLoss(withLabelSmoothing(c.data, c.eps), Tensor.from(c.logits, c.shape), c.batch).values()[0];
      assert.ok(Math.abs(loss - theirs[i]) <= 1e-5 * Math.max(1, Math.abs(theirs[i])), `ours ${loss}, torch ${theirs[i]}`);
    });
  });
});

describe('--label-smoothing in the loop', () => {
  const data = splitTrainTest(syntheticClassification({ seed: 2, samples: 96, inputShape: [1, 28, 28], numClasses: 10, noise: 3 }), 64);
  const config = { ...defaultConfig('mlp'), hidden: [16], batchSize: 16, maxSteps: 1, seed: 4 };

  it('the first step\'s loss is the smoothed cross-entropy of the first batch; the evaluation is the plain one', async () => {
    const steps: StepRecord[] = [];
    const o = await train({ ...config, labelSmoothing: 0.3 }, data, new LocalStrategy(), { onStep: (s) => steps.push(s) });
    const model = createModel(specFor(config, data.train), config.seed);
    const [first] = new BatchLoader(data.train, new DistributedSampler({ size: 64, worldSize: 1, rank: 0, seed: 4, shuffle: true }), 16).batches(0);
    const logits = noGrad(() => model.forward(batchInput(data.train, first)));
    const smoothed = batchLoss(withLabelSmoothing(data.train, 0.3), logits, first).values()[0];
    const plain = batchLoss(data.train, logits, first).values()[0];
    assert.equal(steps[0].loss, smoothed);
    assert.ok(Math.abs(smoothed - plain) > 1e-3, 'smoothing changed nothing');
    const e = await import('../../../src/train/loop/evaluate.js').then((m) => m.evaluate(o.model, data.test, config.evalBatchSize));
    assert.equal(o.finalEval!.loss, e.loss);
  });

  it('refuses a regression set and ε outside [0, 1), naming the flag', () => {
    const regression = { task: 'regression' as const, name: 'reg', size: 1, inputShape: [1], inputs: new Float32Array(1), targetShape: [1], targets: new Float32Array(1) };
    assert.throws(() => withLabelSmoothing(regression, 0.1), /--label-smoothing 0.1: reg is a regression set/);
    assert.throws(() => withLabelSmoothing(images, 1), /--label-smoothing must lie in \[0, 1\)/);
    assert.equal(withLabelSmoothing(images, 0), images);
  });
});
