import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type JobResult, resultFile } from '../../src/cluster/job.js';

describe('a federated job\'s result.json', () => {
  it('is named and versioned like every other file, keys in snake_case at every depth', () => {
    const result: JobResult = {
      schema: 'smolcluster-federated-result', schema_version: 1, job: 1, policy: 'random', rounds: 1, epochs: 2, hidden: 8, lr: 1e-4, seed: 0,
      weighting: 'equal', precision: 'fp32', shards: [{ name: 'a', rows: 10 }], validationRows: 5,
      history: [{ round: 1, validationError: 0.5, trainError: 0.4, ms: 3, tasks: [{ task: 0, shard: 'a', node: 'n1', device: 'cpu', ms: 2, attempts: 1, trainError: 0.4, epochs: 2 }] }],
      validationError: 0.5, weightsChecksum: 'abc', ms: 4,
    };
    const file = JSON.parse(resultFile(result)) as Record<string, unknown> & { history: Array<Record<string, unknown> & { tasks: Array<Record<string, unknown>> }> };
    assert.equal(file.schema, 'smolcluster-federated-result');
    assert.equal(file.schema_version, 1);
    assert.equal(file.validation_error, 0.5);
    assert.equal(file.weights_checksum, 'abc');
    assert.equal(file.validation_rows, 5);
    assert.equal(file.history[0].train_error, 0.4);
    assert.equal(file.history[0].tasks[0].train_error, 0.4);
    const keys = (o: unknown): string[] => (o && typeof o === 'object' ? Object.entries(o).flatMap(([k, v]) => [k, ...keys(v)]) : []);
    assert.ok(keys(file).every((k) => /^[a-z0-9_]+$/.test(k)), 'snake_case everywhere');
  });
});
