import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildLettersModel, evaluateShard, fitShard, fitShardInSlices, lettersParamCount } from '../../src/cluster/letters_model.js';
import { parseLetters } from '../../src/data/letters.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { crossEntropy } from '../../src/tensor/ops/loss.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { Rng } from '../../src/util/rng.js';

function shard(rows: number, seed: number) {
  const rng = new Rng(seed);
  const lines = Array.from({ length: rows }, () => [...Array.from({ length: 16 }, () => rng.int(16)), rng.int(26)].join(','));
  return parseLetters(lines.join('\n'), 'synthetic');
}

/** The summed cross-entropy of the model at `w`, in float64 from float32 logits. */
function summedLoss(hidden: number, w: Float32Array, s: ReturnType<typeof shard>): number {
  const m = buildLettersModel(hidden, 0);
  m.arena().params.readSync().set(w);
  return noGrad(() => crossEntropy(m.forward(Tensor.fromHost(s.features, [s.rows, 16])), s.labels).values()[0] * s.rows);
}

test('one epoch is one step of plain gradient descent on the summed loss (eta means what it meant in the original)', async () => {
  const s = shard(12, 1);
  const hidden = 5;
  const model = buildLettersModel(hidden, 3);
  const w0 = model.arena().params.readSync().slice();
  assert.equal(w0.length, lettersParamCount(hidden));
  const lr = 1e-3;
  const { delta, epochs } = await fitShard({ hidden, start: w0, shard: s, epochs: 1, lr });
  assert.equal(epochs, 1);
  // Finite differences of the summed loss on a few coordinates: delta = -lr · dL/dw.
  for (const i of [0, 7, 80, w0.length - 1]) {
    const h = 1e-2;
    const up = w0.slice();
    const down = w0.slice();
    up[i] += h;
    down[i] -= h;
    const grad = (summedLoss(hidden, up, s) - summedLoss(hidden, down, s)) / (2 * h);
    assert.ok(Math.abs(-delta[i] / lr - grad) <= 0.02 * Math.abs(grad) + 0.02, `coordinate ${i}: ${-delta[i] / lr} vs ${grad}`);
  }
});

test('training stops early once the summed loss moves by 0.2 or less', async () => {
  const s = shard(30, 2);
  const model = buildLettersModel(8, 4);
  const w0 = model.arena().params.readSync().slice();
  // A learning rate so small that the loss cannot move by 0.2: one update, then the stop.
  assert.equal((await fitShard({ hidden: 8, start: w0, shard: s, epochs: 50, lr: 1e-9 })).epochs, 1);
  const moving = await fitShard({ hidden: 8, start: w0, shard: s, epochs: 5, lr: 1e-3 });
  assert.equal(moving.epochs, 5);
  assert.ok(moving.trainError >= 0 && moving.trainError <= 1);
});

test('the same start and shard give the same bits, whatever was trained before', async () => {
  const s = shard(40, 3);
  const a = buildLettersModel(6, 1);
  const w0 = a.arena().params.readSync().slice();
  const first = (await fitShard({ hidden: 6, start: w0, shard: s, epochs: 4, lr: 1e-3 })).delta;
  const b = buildLettersModel(6, 99);
  await fitShard({ hidden: 6, start: b.arena().params.readSync().slice(), shard: s, epochs: 3, lr: 1e-2 }); // some other training between
  assert.deepEqual((await fitShard({ hidden: 6, start: w0, shard: s, epochs: 4, lr: 1e-3 })).delta, first);
  const err = await evaluateShard(a, w0, s);
  assert.ok(err > 0.5, 'an untrained model misclassifies most rows');
});

test('training in slices gives the same bits as in one go, and the event loop runs between slices', async () => {
  const s = shard(600, 5);
  const model = buildLettersModel(24, 2);
  const w0 = model.arena().params.readSync().slice();
  const whole = await fitShard({ hidden: 24, start: w0, shard: s, epochs: 40, lr: 1e-4 });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const t0 = performance.now();
  const sliced = await fitShardInSlices({ hidden: 24, start: w0, shard: s, epochs: 40, lr: 1e-4 }, 0); // a turn after every epoch
  const ms = performance.now() - t0;
  clearInterval(timer);
  assert.deepEqual(sliced.delta, whole.delta);
  assert.deepEqual([sliced.epochs, sliced.trainError, sliced.trainLoss], [whole.epochs, whole.trainError, whole.trainLoss]);
  // A 1 ms timer fires during the training (fitShard alone would hold it back to the end).
  assert.ok(sliced.epochs > 2 && ticks >= 1, `${ticks} timer ticks in ${ms.toFixed(0)} ms of ${sliced.epochs} epochs`);
});

test('a task trains in the job\'s precision (bf16 when the job says so, fp32 by default)', async () => {
  const s = shard(12, 5);
  const w0 = buildLettersModel(4, 2).arena().params.readSync().slice();
  const seen: string[] = [];
  const { computePrecision } = await import('../../src/tensor/precision.js');
  for (const precision of ['bf16', undefined] as const) {
    const fit = await fitShard({ hidden: 4, start: w0, shard: s, epochs: 1, lr: 1e-3, precision });
    assert.equal(fit.epochs, 1);
    // The loop set it once for the task's run (and leaves it set until the next run sets its own).
    seen.push(computePrecision());
  }
  assert.deepEqual(seen, ['bf16', 'fp32']);
});
