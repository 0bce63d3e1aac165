/**
 * Resume means resume, on another shape (issue 33 §2): a ZeRO run resharded onto another number of
 * workers may ask for more steps than the one that wrote its shards, a load-balanced run resumes
 * on another number of workers (its shares start equal again), and so does a pipeline (each stage's
 * ranks of the new replicas read that stage's folder). Each continues from the step its
 * checkpoint saved, says so, and metrics.jsonl holds each step once.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCliProcess, stepRecords, tempDir } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('resume-reshape');
  writeFileSync(join(dir, 'book.txt'), `${'the cat sat on a mat and the dog ran far from home while birds sang in tall green trees '.repeat(6)}\n`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const train = ['train', '--dataset', 'synthetic-regression', '--model', 'mlp', '--hidden', '16', '--threads', '1', '--eval-batch-size', '1024'];

/** Rank 0's steps in the run's metrics, in order. */
const steps = (name: string): number[] => stepRecords(join(dir, name, 'metrics.jsonl'), 0).map((r) => r.step);

describe('resume on another number of workers', { timeout: 240_000 }, () => {
  it('ZeRO: 2 ranks\' shards resharded onto 3, with more steps than the first run planned', async () => {
    const common = [...train, '--zero', '1', '--checkpoint-every', '4', '--experiments-dir', dir, '--name', 'zero'];
    const first = await runCliProcess([...common, '--workers', '2', '--batch-size', '6', '--max-steps', '4']);
    assert.equal(first.code, 0, first.stderr);
    // The same global batch (12) on 3 ranks, 4 steps more.
    const resumed = await runCliProcess([...common, '--workers', '3', '--batch-size', '4', '--max-steps', '8', '--resume', 'auto']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /^smolcluster: resumed from step 4 \(.*rank-0\/ckpt-00000004\.smolckpt \(resharded from 2 ranks to 3\)\)$/m);
    assert.deepEqual(steps('zero'), [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('load balancing: 2 workers\' checkpoint resumed on 3, all three training the steps left', async () => {
    const common = [...train, '--enable-load-balancing', '--batch-size', '8', '--checkpoint-every', '3', '--experiments-dir', dir, '--name', 'balanced'];
    const first = await runCliProcess([...common, '--workers', '2', '--max-steps', '3']);
    assert.equal(first.code, 0, first.stderr);
    const resumed = await runCliProcess([...common, '--workers', '3', '--max-steps', '6', '--resume', 'auto']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /^smolcluster: resumed from step 3 \(/m);
    assert.deepEqual(steps('balanced'), [0, 1, 2, 3, 4, 5]);
    const last = stepRecords(join(dir, 'balanced', 'metrics.jsonl')).filter((r) => r.step === 5);
    assert.deepEqual(last.map((r) => r.rank), [0, 1, 2], 'three workers trained the resumed steps');
  });

  it('pipeline: 2 stages of one replica resumed as 2 stages of two replicas', async () => {
    const common = [
      'train', '--dataset', 'text', '--data-file', join(dir, 'book.txt'), '--tokenizer', 'bytes', '--model', 'gpt2', '--layers', '2', '--width', '32', '--heads', '2',
      '--context', '16', '--batch-size', '4', '--epochs', '5', '--threads', '1', '--pipeline-stages', '2', '--checkpoint-every', '4', '--experiments-dir', dir, '--name', 'pipeline',
    ];
    const first = await runCliProcess([...common, '--workers', '2', '--max-steps', '4']);
    assert.equal(first.code, 0, first.stderr);
    const resumed = await runCliProcess([...common, '--workers', '4', '--max-steps', '8', '--resume', 'auto']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /^smolcluster: resumed from step 4 \(/m);
    assert.deepEqual(steps('pipeline'), [0, 1, 2, 3, 4, 5, 6, 7]);
    const last = stepRecords(join(dir, 'pipeline', 'metrics.jsonl')).filter((r) => r.step === 7);
    assert.deepEqual(last.map((r) => r.rank), [0, 1, 2, 3], 'two replicas of two stages trained the resumed steps');
  });
});
