import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildLettersModel, fitShard } from '../../src/cluster/letters_model.js';
import { ShardFit, shardDataset } from '../../src/cluster/shard_fit.js';
import { parseLetters } from '../../src/data/letters.js';
import { defaultConfig } from '../../src/train/run/config.js';
import { type StepRecord, train } from '../../src/train/loop/loop.js';
import { Rng } from '../../src/util/rng.js';

function shard(rows: number, seed: number) {
  const rng = new Rng(seed);
  const lines = Array.from({ length: rows }, () => [...Array.from({ length: 16 }, () => rng.int(16)), rng.int(26)].join(','));
  return parseLetters(lines.join('\n'), 'synthetic');
}

test('a task trains through the one loop: a record per update, the stopping epoch takes none, and the loop\'s model is the fit', async () => {
  const s = shard(50, 6);
  const start = buildLettersModel(7, 2).arena().params.readSync().slice();
  const config = { ...defaultConfig('mlp'), hidden: [7], batchSize: s.rows, epochs: 30, lr: 1e-9, momentum: 0, schedule: 'constant' as const };
  const steps: StepRecord[] = [];
  const strategy = new ShardFit(start, s, null);
  const data = shardDataset(s);
  const { model } = await train(config, { train: data, test: data }, strategy, { onStep: (r) => steps.push(r) });
  // A rate too small to move the loss by 0.2: one update, then the early stop.
  assert.deepEqual(steps.map((r) => [r.step, r.samples]), [[0, 50]]);
  assert.equal(strategy.updates, 1);
  assert.ok(Math.abs(steps[0].loss * 50 - strategy.last!.loss) < 1e-3, 'the record holds the mean of the summed loss');
  const fit = await fitShard({ hidden: 7, start, shard: s, epochs: 30, lr: 1e-9 });
  assert.deepEqual(fit.delta, Float32Array.from(model.arena().params.readSync(), (w, i) => w - start[i]));
  assert.equal(fit.epochs, 1);
});

test('tasks trained at once give the bits each gives alone (no two share an epoch\'s buffers)', async () => {
  const a = shard(60, 8);
  const b = shard(60, 9); // the same shapes: a shared recycler would hand one task's buffers to the other
  const start = buildLettersModel(5, 1).arena().params.readSync().slice();
  const task = (s: typeof a) => ({ hidden: 5, start, shard: s, epochs: 6, lr: 1e-3 });
  const alone = [await fitShard(task(a)), await fitShard(task(b))];
  const together = await Promise.all([fitShard(task(a)), fitShard(task(b))]);
  assert.deepEqual(together, alone);
});
