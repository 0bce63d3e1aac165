import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TrainResult } from '../../src/train/run/result.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';
import { writeCifarDir } from '../data/cifar10-fixtures.js';

let dir = '';
before(() => {
  dir = tempDir('datasets-cli');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const common = (name: string): string[] => ['--threads', '1', '--experiments-dir', dir, '--name', name];
const result = (name: string): TrainResult => JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8')) as TrainResult;

describe('the guide\'s datasets through train', { timeout: 120_000 }, () => {
  it('nn_config.yaml dataset.name synthetic_image trains an image model; result.json names the set', async () => {
    const nn = join(dir, 'nn.yaml');
    writeFileSync(nn, 'batch_size: 16\nlearning_rate: 0.02\nnum_epochs: 1\nmax_steps: 4\nmodel: {type: mlp, hidden: 16}\ndataset: {name: synthetic_image}\n');
    const r = await runCli(['train', '--nn', nn, ...common('img')]);
    assert.equal(r.code, 0, r.stderr);
    const res = result('img');
    assert.equal(res.config.dataset, 'synthetic_image');
    assert.equal(res.steps, 4);
    assert.match(res.model, /^mlp 3072-16-10$/);
    assert.ok(res.test_accuracy !== null && res.test_accuracy >= 0 && res.test_accuracy <= 1);
    assert.equal(res.test_perplexity, undefined);
    assert.equal(res.tokens_per_sec, undefined, 'no tokens/s for an image model');
    assert.match(r.stdout, / samples\/s \(.*, fp32 on cpu\)/);
  });

  it('cifar10 from --data-dir with --augment trains; a missing directory says where to get the files', async () => {
    const data = writeCifarDir(join(dir, 'cifar'), 8, 4);
    const r = await runCli(['train', '--dataset', 'cifar10', '--data-dir', data, '--augment', '--model', 'mlp', '--hidden', '8', '--batch-size', '8', '--max-steps', '3', ...common('cifar')]);
    assert.equal(r.code, 0, r.stderr);
    const res = result('cifar');
    assert.deepEqual([res.config.dataset, res.config.augment, res.steps, res.model], ['cifar10', true, 3, 'mlp 3072-8-10']);
    const missing = await runCli(['train', '--dataset', 'cifar10', '--data-dir', join(dir, 'no-cifar'), ...common('nocifar')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no-cifar: does not exist: --data-dir must hold data_batch_1\.bin.*test_batch\.bin.*cifar-10-binary\.tar\.gz/);
  });

  it('--dataset text without --data-file, or with a missing file, says what is needed', async () => {
    const none = await runCli(['train', '--dataset', 'text', ...common('nofile')]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /--dataset text needs --data-file FILE/);
    const missing = await runCli(['train', '--dataset', 'text', '--data-file', join(dir, 'none.txt'), '--tokenizer', 'bytes', ...common('missing')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /none\.txt: text file not found/);
  });

  it('an unknown dataset name in nn_config.yaml is refused, naming the key and the accepted names', async () => {
    const nn = join(dir, 'bad.yaml');
    writeFileSync(nn, 'batch_size: 16\nlearning_rate: 0.02\nnum_epochs: 1\nmodel: {type: mlp}\ndataset: {name: imagenet}\n');
    const r = await runCli(['train', '--nn', nn, ...common('bad')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /dataset\.name.*synthetic_image/s);
  });
});
