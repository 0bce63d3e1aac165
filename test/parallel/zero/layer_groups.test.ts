import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { createModel, defaultSpec } from '../../../src/nn/models/index.js';
import { layerListOf } from '../../../src/nn/layer_list.js';
import { layerGroups } from '../../../src/parallel/zero/layer_groups.js';
import { overlapCounts, planShards } from '../../../src/parallel/zero/shard_plan.js';
import { ShardedModel } from '../../../src/parallel/zero/sharded_model.js';

const gpt = () => createModel({ type: 'gpt2', vocabSize: 20, context: 8, layers: 2, width: 16, heads: 2, dropout: 0 }, 4);

describe('ZeRO-3 layer groups and the sharded model', () => {
  it('GPT-2\'s groups are its top-level blocks; the tied embeddings are read by the first and the last stage', () => {
    const model = gpt();
    const layout = model.arena().entries;
    const { groups, byStage } = layerGroups(layerListOf(model)!, layout);
    assert.deepEqual(groups.map((g) => g.module), ['transformer.wte', 'transformer.wpe', 'transformer.h.0', 'transformer.h.1', 'transformer.ln_f']);
    assert.deepEqual(groups[0].stages, [0, 3]);
    assert.deepEqual(byStage, [[0, 1], [2], [3], [4, 0]]);
    const covered = groups.reduce((n, g) => n + g.last - g.first + 1, 0);
    assert.equal(covered, layout.length);
  });

  it('BERT\'s groups are its embeddings, each encoder layer and the MLM head; the head\'s layer reads the embeddings\' group (tied)', () => {
    const model = createModel(defaultSpec('bert-tiny', [8], 20, { layers: 2, width: 16 }), 1);
    const layout = model.arena().entries;
    const { groups, byStage } = layerGroups(layerListOf(model)!, layout);
    assert.deepEqual(groups.map((g) => g.module), ['bert.embeddings', 'bert.encoder.layer.0', 'bert.encoder.layer.1', 'cls.predictions']);
    assert.deepEqual(groups[0].stages, [0, 3]);
    assert.deepEqual(byStage, [[0], [1], [2], [3, 0]]);
    assert.equal(groups.reduce((n, g) => n + g.last - g.first + 1, 0), layout.length);
  });

  it('overlapCounts: each rank\'s part of a range, zero where its shard misses it', () => {
    const plan = planShards(10, 4); // 3, 3, 3, 1
    assert.deepEqual(overlapCounts(plan, 2, 7), [1, 3, 1, 0]);
    assert.deepEqual(overlapCounts(plan, 9, 10), [0, 0, 0, 1]);
  });

  it('stage 3 keeps only the shard; a released parameter names itself when used; a gather brings back its values', async () => {
    const whole = gpt();
    const reference = whole.arena().params.readSync().slice();
    const [t0, t1] = createInProcessTransports(2, { timeoutMs: 5000 });
    const models = [gpt(), gpt()];
    const sharded = await Promise.all([new ProcessGroup(t0, { timeoutMs: 5000 }), new ProcessGroup(t1, { timeoutMs: 5000 })].map((g, r) => ShardedModel.build(models[r], g, 3)));
    const [a, b] = sharded[1].range;
    assert.equal(models[1].arena(), sharded[1].shard);
    assert.deepEqual(models[1].arena().params.readSync(), reference.subarray(a, b));
    const wte = models[0].namedParameters()[0][1];
    assert.throws(() => wte.values(), /ZeRO-3: parameter transformer.wte.weight is used while it is sharded/);
    await Promise.all(sharded.map((s) => s.gather(2, 5)));
    const e = sharded[0].layout[2];
    assert.deepEqual(models[0].namedParameters()[2][1].values(), reference.subarray(e.offset, e.offset + e.size));
    sharded.forEach((s) => s.release(2, 5));
    assert.throws(() => models[0].namedParameters()[2][1].values(), /is used while it is sharded/);
  });
});
