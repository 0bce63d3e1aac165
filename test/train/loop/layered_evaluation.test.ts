import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticText } from '../../../src/data/synthetic_text.js';
import { createModel } from '../../../src/nn/index.js';
import { modelLayers } from '../../../src/nn/layer_list.js';
import { settled } from '../../../src/nn/layers/maybe_async.js';
import { gpt2Spec } from '../../../src/nn/models/presets.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import type { Tensor } from '../../../src/tensor/tensor.js';
import { evaluationLoop } from '../../../src/train/loop/evaluate.js';
import { type LayeredForward, layeredEvaluationLoop, passShape } from '../../../src/train/loop/layered_evaluation.js';
import { batchInput } from '../../../src/train/loop/objective.js';

test('a pass fits the budget: half for one chunk\'s run, half for two sets of kept stage outputs', () => {
  // 100 bytes a sample's run, 10 kept: chunks of 5 (500 ≤ 500), 5 of them (2 × 5 × 5 × 10 = 500).
  assert.deepEqual(passShape({ bytes: 1000 }, { run: 100, kept: 10, stages: 4 }, 1000), { chunk: 5, chunks: 5 });
  // The requested batch caps the chunk; a sample over budget still runs alone.
  assert.deepEqual(passShape({ bytes: 1000 }, { run: 1, kept: 1, stages: 4 }, 3), { chunk: 3, chunks: 83 });
  assert.deepEqual(passShape({ bytes: 10 }, { run: 1000, kept: 1000, stages: 4 }, 8), { chunk: 1, chunks: 1 });
});

test('an evaluation chunk holds no more than a training micro-batch\'s forward: its largest stage and every other stage\'s output', () => {
  // 2 training samples hold 2 × (100 + 3 × 10) = 260 bytes: chunks of 2 (not 5), and more of them a pass.
  assert.deepEqual(passShape({ bytes: 1000, trainingSamples: 2 }, { run: 100, kept: 10, stages: 4 }, 1000), { chunk: 2, chunks: 12 });
  assert.deepEqual(passShape({ bytes: 1000, trainingSamples: 1 }, { run: 100, kept: 10, stages: 4 }, 1000), { chunk: 1, chunks: 25 });
});

const data = syntheticText({ seed: 4, samples: 23, split: 'test', task: 'language-model', contextLength: 16, vocab: 32 });
const lmSpec = gpt2Spec('gpt2-tiny', 32, 16, { layers: 2, width: 32, heads: 2 });

test('ranks evaluating layer-major add up to one process\'s sums, each stage run once per pass over all its chunks', async () => {
  const one = createModel(lmSpec, 6);
  const whole = await evaluationLoop(one, data, 1000, (batch) => noGrad(() => one.forward(batchInput(data, batch))));
  for (const budget of [1, 64 * 1024 * 1024]) {
    const groups = createInProcessTransports(3, { timeoutMs: 10_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 10_000 }));
    const passes = [0, 0, 0];
    const sums = await Promise.all(groups.map((g) => {
      const lm = createModel(lmSpec, 6);
      const stages = modelLayers(lm);
      const forward: LayeredForward = async (chunks, run) => {
        passes[g.rank]++;
        let xs: Tensor[] = chunks.map((c) => batchInput(data, c));
        for (const [s, stage] of stages.entries()) {
          const outs: Tensor[] = [];
          for (const [k, x] of xs.entries()) {
            const out = run.piece(() => noGrad(() => settled(stage.forward(x, stage.tied?.tensor), stage.name)));
            if (s < stages.length - 1) outs.push(run.keep(k, out));
            else await run.score(k, out);
          }
          xs = outs;
        }
      };
      return layeredEvaluationLoop(lm, data, 1000, forward, { rank: g.rank, count: g.size, allGather: (v) => g.allGather(v) }, { bytes: budget });
    }));
    for (const s of sums) {
      assert.equal(s.weight, whole.weight, `budget ${budget}`);
      assert.equal(s.correct, whole.correct, `budget ${budget}`);
      assert.ok(Math.abs(s.loss - whole.loss) < 1e-6 * whole.loss, `budget ${budget}: ${s.loss} vs ${whole.loss}`);
    }
    // The probe (a sample a rank), then (1-byte budget) one sample a chunk and one chunk a pass: the other
    // 20 samples in 7 passes of 3; or (64 MB) every rank's whole share in one pass.
    assert.deepEqual(passes, budget === 1 ? [8, 8, 8] : [2, 2, 2], `budget ${budget}`);
  }
});
