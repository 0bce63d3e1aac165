import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { snakeCase, snakeCaseKeys } from '../../src/util/snake_case.js';

describe('snake_case keys for the files users read', () => {
  it('spells camelCase keys in snake_case, units as one word, snake_case untouched', () => {
    const cases: Array<[string, string]> = [
      ['batchSize', 'batch_size'], ['evalBatchSize', 'eval_batch_size'], ['memoryGiB', 'memory_gib'], ['gpuSource', 'gpu_source'],
      ['weightsChecksum', 'weights_checksum'], ['lr', 'lr'], ['clip_grad_norm', 'clip_grad_norm'], ['maxSteps', 'max_steps'],
    ];
    for (const [from, to] of cases) assert.equal(snakeCase(from), to, from);
  });

  it('converts every depth, lists included, and leaves values alone', () => {
    assert.deepEqual(snakeCaseKeys({ validationError: 0.5, history: [{ trainError: 1, tasks: [{ nodeName: 'aB' }] }], hidden: [128, 64], seed: null }), {
      validation_error: 0.5, history: [{ train_error: 1, tasks: [{ node_name: 'aB' }] }], hidden: [128, 64], seed: null,
    });
  });
});
