import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticText } from '../../../src/data/synthetic_text.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type TrainData, train } from '../../../src/train/loop/loop.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { ZeroStrategy } from '../../../src/train/strategies/zero.js';
import { maxRelDiff } from '../../helpers/cluster.js';

/**
 * BERT under ZeRO-3: its layer list (nn/layer_list.ts) gives the gather groups — the embeddings,
 * each encoder layer, and the MLM head, which reads the tied word embeddings from the first group.
 */
const TEXT_DATA: TrainData = {
  train: syntheticText({ seed: 4, samples: 32, split: 'train', task: 'masked-lm', contextLength: 16, vocab: 32 }),
  test: syntheticText({ seed: 4, samples: 16, split: 'test', task: 'masked-lm', contextLength: 16, vocab: 32 }),
};

function bertConfig(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...defaultConfig('bert-tiny'), layers: 2, width: 32, heads: 2, context: 16, optimizer: 'adamw', lr: 0.003, clipGradNorm: 1, maxSteps: 3, evalBatchSize: 16, evalEvery: 0, ...over };
}

const paramsOf = (model: { namedParameters(): [string, { values(): ArrayLike<number> }][] }): Float32Array =>
  Float32Array.from(model.namedParameters().flatMap(([, p]) => Array.from(p.values())));

describe('ZeRO-3 with BERT (layer groups from its layer list)', () => {
  it('2 ranks give one process\'s losses, parameters and test loss', async () => {
    const losses: number[] = [];
    const single = await train(bertConfig({ batchSize: 8 }), TEXT_DATA, new LocalStrategy(), { onStep: (r) => losses.push(r.loss) });
    const seen: number[] = [];
    const groups = createInProcessTransports(2, { timeoutMs: 20_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 20_000 }));
    const outs = await Promise.all(groups.map((g) => train(bertConfig({ batchSize: 4 }), TEXT_DATA, new ZeroStrategy(g, { stage: 3, bucketFloats: 2000 }), { onStep: (r) => g.rank === 0 && seen.push(r.loss) })));
    assert.equal(seen.length, 3);
    assert.notEqual(losses[0], losses[2]); // it trains: the comparison is not of two idle models
    assert.ok(maxRelDiff(seen, losses) < 1e-5, `losses ${seen} vs ${losses}`);
    const d = maxRelDiff(paramsOf(outs[0].model), paramsOf(single.model));
    assert.ok(d < 1e-5, `rank 0's parameters differ by ${d}`);
    assert.ok(outs[0].finalEval && Math.abs(outs[0].finalEval.loss - single.finalEval!.loss) < 1e-5 * single.finalEval!.loss);
  });
});
