/**
 * Early stopping and the best model as a Trainer user runs them (issue 33 §6): two workers train a
 * tiny GPT-2 on a text they overfit, evaluating every 10 steps against another text; the run stops
 * once the evaluation loss has not improved for 2 evaluations, says so in one line, keeps the best
 * model in best/ beside the checkpoints, names its step and loss in result.json and the summary,
 * and --save writes that model, not the last one.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { largestParamDifference, readJsonl, runCliProcess, tempDir } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('early-stopping');
  const words = (seed: number, list: string[], n: number): string => {
    let x = seed;
    return Array.from({ length: n }, () => list[(x = (x * 1103515245 + 12345) % 2147483648) % list.length]).join(' ');
  };
  const common = 'the cat sat on a mat and the dog ran far from home while birds sang in tall green trees'.split(' ');
  writeFileSync(join(dir, 'train.txt'), `${words(1, common, 120)}\n`);
  writeFileSync(join(dir, 'val.txt'), `${words(2, [...common, ...'zebra quickly jumps over lazy foxes beyond seven misty hills'.split(' ')], 200)}\n`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('early stopping (2 workers)', { timeout: 90_000 }, () => {
  it('stops after the patience, keeps best/ and --save writes the best model', async () => {
    const saved = join(dir, 'best-out.smol');
    const r = await runCliProcess([
      'train', '--workers', '2', '--dataset', 'text', '--data-file', join(dir, 'train.txt'), '--val-file', join(dir, 'val.txt'), '--tokenizer', 'bytes',
      '--model', 'gpt2', '--layers', '1', '--width', '32', '--heads', '2', '--context', '16', '--batch-size', '4', '--epochs', '60', '--lr', '0.01',
      '--eval-every', '10', '--early-stopping-patience', '2', '--label-smoothing', '0.1', '--threads', '1',
      '--experiments-dir', dir, '--name', 'es', '--save', saved,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const run = join(dir, 'es');
    const result = JSON.parse(readFileSync(join(run, 'result.json'), 'utf8'));
    const evals = readJsonl(join(run, 'metrics.jsonl')).filter((l) => l.kind === 'eval') as Array<{ step: number; test_loss: number }>;
    const losses = evals.map((e) => e.test_loss);
    const bestAt = losses.indexOf(Math.min(...losses));
    assert.equal(evals.length - 1 - bestAt, 2, `two evaluations without improvement after the best: ${losses.join(', ')}`);
    assert.deepEqual(result.stopped_early, { step: evals.at(-1)!.step, patience: 2 });
    assert.equal(result.steps, evals.at(-1)!.step);
    assert.equal(result.config.label_smoothing, 0.1);
    const best = { step: evals[bestAt].step, eval_loss: losses[bestAt], file: join(run, 'checkpoints', 'best', 'model.smol') };
    assert.deepEqual(result.best, best);
    assert.deepEqual(JSON.parse(readFileSync(join(run, 'checkpoints', 'best', 'best.json'), 'utf8')), { step: best.step, loss: best.eval_loss, file: best.file });
    assert.match(r.stderr, new RegExp(`^smolcluster: early stopping after step ${result.steps}: the evaluation loss has not improved for 2 evaluations \\(best ${best.eval_loss.toFixed(4)} at step ${best.step}\\)$`, 'm'));
    assert.match(r.stdout, new RegExp(`best eval loss ${best.eval_loss.toFixed(4)} at step ${best.step} \\(stopped early\\)`));
    assert.equal(largestParamDifference(saved, best.file), 0, '--save wrote the best model');
  });
});
