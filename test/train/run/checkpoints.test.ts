import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Dropout, Linear, Sequential, loadModel, readModelHeader } from '../../../src/nn/index.js';
import { type ModelSpec, createModel } from '../../../src/nn/models/index.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import { Checkpointer, ResumeError, checkpointFile, hasCheckpoints, listCheckpoints } from '../../../src/train/run/checkpoints.js';
import { InterruptedError, StopRequest } from '../../../src/train/run/interrupt.js';
import { resumeOffset } from '../../../src/train/loop/step_plan.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';

const SPEC: ModelSpec = { type: 'mlp', inputDim: 8, hidden: 4, out: 2 };
let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'smolcluster-ckpts-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A model and Adam optimizer after `steps` steps on made-up gradients. */
function trained(seed: number, steps: number) {
  const model = createModel(SPEC, seed);
  const optimizer = makeOptimizer(model.arena(), { name: 'adam', lr: 0.01 });
  const rng = new Rng(seed);
  for (let s = 0; s < steps; s++) {
    const g = model.arena().grads.readSync();
    for (let i = 0; i < g.length; i++) g[i] = rng.normal();
    optimizer.step();
  }
  return { model, optimizer };
}

describe('Checkpointer', () => {
  it('saves every N steps, keeps the newest K, and restores model, optimizer state and step count bit for bit', async () => {
    const d = join(dir, 'keep');
    const { model, optimizer } = trained(1, 3);
    const ck = new Checkpointer({ dir: d, every: 2, keep: 2 }, 'run-a', true);
    for (let step = 1; step <= 7; step++) await ck.afterStep(model, SPEC, optimizer, { step, epoch: 0, batch: step }, 100);
    assert.deepEqual(listCheckpoints(d), [checkpointFile(d, 6), checkpointFile(d, 4)]);
    const fresh = trained(2, 0);
    const reader = new Checkpointer({ dir: d, every: 0, keep: 2, resume: 'auto' }, 'run-a', false);
    const got = reader.restore(fresh.model, SPEC, fresh.optimizer, 100);
    assert.deepEqual(got?.position, { step: 6, epoch: 0, batch: 6 });
    assert.deepEqual(fresh.model.arena().params.readSync(), model.arena().params.readSync());
    assert.equal(fresh.optimizer.steps, 3);
    fresh.optimizer.stateBuffers().forEach((b, i) => assert.deepEqual(b, optimizer.stateBuffers()[i]));
    // A checkpoint is also a model file: loadModel reads its model part.
    const m2 = createModel(SPEC, 9);
    assert.equal(readModelHeader(got!.file).header.format, 'smolcluster-checkpoint');
    loadModel(got!.file, m2, SPEC);
    assert.deepEqual(m2.arena().params.readSync(), model.arena().params.readSync());
  });

  it('per-rank state: a non-zero rank writes its own file under rank-<r>/ with its buffers, restored bit for bit; a file without them is refused', async () => {
    const d = join(dir, 'per-rank');
    const { model, optimizer } = trained(3, 2);
    const anchor = Float32Array.from({ length: 5 }, (_, i) => i / 3);
    const writer = new Checkpointer({ dir: d, every: 4, keep: 2 }, 'run-r', false, {}, undefined, { rank: 1, buffers: () => [['anchor', anchor]] });
    await writer.afterStep(model, SPEC, optimizer, { step: 4, epoch: 0, batch: 4 }, 10);
    assert.deepEqual(listCheckpoints(d), []);
    assert.deepEqual(listCheckpoints(join(d, 'rank-1')), [checkpointFile(join(d, 'rank-1'), 4)]);
    const fresh = trained(4, 0);
    const back = new Float32Array(5);
    const reader = new Checkpointer({ dir: d, every: 0, keep: 2, resume: d }, 'run-r', false, {}, undefined, { rank: 1, buffers: () => [['anchor', back]] });
    assert.equal(reader.restore(fresh.model, SPEC, fresh.optimizer, 10)?.position.step, 4);
    assert.deepEqual(back, anchor);
    assert.deepEqual(fresh.model.arena().params.readSync(), model.arena().params.readSync());
    const other = new Float32Array(6);
    const wrong = new Checkpointer({ dir: d, every: 0, keep: 2, resume: d }, 'run-r', false, {}, undefined, { rank: 1, buffers: () => [['anchor', other]] });
    assert.throws(() => wrong.restore(trained(4, 0).model, SPEC, trained(4, 0).optimizer, 10), (e: unknown) => e instanceof ResumeError && /strategy state/.test(e.message));
  });

  it('a truncated or foreign newest checkpoint is refused by name and the one before it is used', async () => {
    const d = join(dir, 'fallback');
    const { model, optimizer } = trained(3, 2);
    await new Checkpointer({ dir: d, every: 1, keep: 5 }, 'run-b', true).afterStep(model, SPEC, optimizer, { step: 1, epoch: 0, batch: 1 }, 10);
    const good = model.arena().params.readSync().slice();
    trained(4, 1).model.arena().params.readSync().forEach((v, i) => (model.arena().params.readSync()[i] = v));
    await new Checkpointer({ dir: d, every: 1, keep: 5 }, 'run-b', true).afterStep(model, SPEC, optimizer, { step: 2, epoch: 0, batch: 2 }, 10);
    await new Checkpointer({ dir: d, every: 1, keep: 5 }, 'run-OTHER', true).afterStep(model, SPEC, optimizer, { step: 3, epoch: 0, batch: 3 }, 10);
    const f2 = checkpointFile(d, 2);
    truncateSync(f2, readFileSync(f2).length - 4);
    const refused: string[] = [];
    const fresh = trained(5, 0);
    const r = new Checkpointer({ dir: d, every: 0, keep: 5, resume: d }, 'run-b', false, { refused: (f) => refused.push(f) })
      .restore(fresh.model, SPEC, fresh.optimizer, 10);
    assert.deepEqual(refused, [checkpointFile(d, 3), f2]);
    assert.equal(r?.position.step, 1);
    assert.deepEqual(fresh.model.arena().params.readSync(), good);
  });

  it('--resume DIR with nothing usable is an error naming the folder and every refused file; auto with no files starts fresh', async () => {
    const d = join(dir, 'bad');
    const { model, optimizer } = trained(6, 1);
    await new Checkpointer({ dir: d, every: 1, keep: 5 }, 'r', true).afterStep(model, SPEC, optimizer, { step: 1, epoch: 0, batch: 1 }, 10);
    writeFileSync(checkpointFile(d, 1), 'garbage');
    assert.throws(() => new Checkpointer({ dir: d, every: 0, keep: 1, resume: d }, 'r', false).restore(model, SPEC, optimizer, 10),
      (e: unknown) => e instanceof ResumeError && e.message.includes(d) && e.message.includes(checkpointFile(d, 1)) && /bad magic/.test(e.message));
    assert.equal(new Checkpointer({ dir: join(dir, 'none'), every: 5, keep: 1, resume: 'auto' }, 'r', false).restore(model, SPEC, optimizer, 10), null);
  });

  it('random streams of the model (dropout masks) continue where they stood', async () => {
    const net = (): Sequential => new Sequential(new Linear(4, 4, new Rng(1)), new Dropout(0.5, new Rng(7)));
    const a = net();
    const opt = makeOptimizer(a.arena(), { name: 'sgd', lr: 0.1 });
    const x = Tensor.from(new Float32Array(8).fill(1), [2, 4]);
    a.forward(x);
    await new Checkpointer({ dir: join(dir, 'rng'), every: 1, keep: 1 }, 'r', true).afterStep(a, 'net', opt, { step: 1, epoch: 0, batch: 1 }, 5);
    const next = a.forward(x).values().slice();
    const b = net();
    new Checkpointer({ dir: join(dir, 'rng'), every: 0, keep: 1, resume: 'auto' }, 'r', false).restore(b, 'net', makeOptimizer(b.arena(), { name: 'sgd', lr: 0.1 }), 5);
    assert.deepEqual(b.forward(x).values(), next);
  });

  it('a resumed run may ask for more steps than the one that wrote the checkpoint (issue 33 §2)', async () => {
    const d = join(dir, 'more-steps');
    const { model, optimizer } = trained(4, 2);
    await new Checkpointer({ dir: d, every: 5, keep: 1 }, 'run-m', true).afterStep(model, SPEC, optimizer, { step: 5, epoch: 0, batch: 5, batches: 10 }, 10);
    const fresh = trained(5, 0);
    const got = new Checkpointer({ dir: d, every: 5, keep: 1, resume: 'auto' }, 'run-m', true).restore(fresh.model, SPEC, fresh.optimizer, 40);
    assert.deepEqual(got?.position, { step: 5, epoch: 0, batch: 5, batches: 10 });
    assert.equal(hasCheckpoints(d), true);
    assert.equal(hasCheckpoints(join(dir, 'none')), false);
  });

  it('ranks with state of their own refuse to resume on another number of ranks, naming both', async () => {
    const d = join(dir, 'ranked-workers');
    const { model, optimizer } = trained(6, 1);
    for (const rank of [0, 1]) {
      const w = new Checkpointer({ dir: d, every: 2, keep: 1 }, 'run-w', rank === 0, {}, undefined, { rank, buffers: () => [['anchor', new Float32Array(3)]] }, 2);
      await w.afterStep(model, SPEC, optimizer, { step: 2, epoch: 0, batch: 2 }, 10);
    }
    const fresh = trained(7, 0);
    const three = new Checkpointer({ dir: d, every: 2, keep: 1, resume: 'auto' }, 'run-w', true, {}, undefined, { rank: 0, buffers: () => [['anchor', new Float32Array(3)]] }, 3);
    assert.throws(() => three.restore(fresh.model, SPEC, fresh.optimizer, 10), (e: Error) => e instanceof ResumeError && /checkpoints of 2 ranks.*this run has 3/.test(e.message));
  });

  it('a stop request (Ctrl-C) saves the step just taken whatever the interval, then stops the run', async () => {
    const d = join(dir, 'interrupt');
    const { model, optimizer } = trained(8, 1);
    const stop = new StopRequest();
    const ck = new Checkpointer({ dir: d, every: 500, keep: 3 }, 'run-i', true, {}, undefined, undefined, 1, stop);
    await ck.afterStep(model, SPEC, optimizer, { step: 7, epoch: 0, batch: 7 }, 1000);
    assert.deepEqual(listCheckpoints(d), []);
    stop.requested = 'SIGINT';
    await assert.rejects(ck.afterStep(model, SPEC, optimizer, { step: 8, epoch: 0, batch: 8 }, 1000),
      (e: Error) => e instanceof InterruptedError && e.step === 8 && e.file === checkpointFile(d, 8) && /interrupted \(SIGINT, Ctrl-C\) after step 8: saved .*--resume auto/.test(e.message));
    assert.deepEqual(listCheckpoints(d), [checkpointFile(d, 8)]);
  });
});

describe('resumeOffset: a checkpoint of another number of workers', () => {
  it('goes on at the same share of the same epoch, its steps numbered on', () => {
    // 2 workers: 120 batches per epoch; step 100 is batch 100 of epoch 0. 3 workers: 80 batches, so batch 67.
    assert.equal(resumeOffset({ step: 100, epoch: 0, batch: 100, batches: 120 }, { compute: true, numBatches: 80 }, false, 'f'), 100 - 67);
    assert.equal(resumeOffset({ step: 130, epoch: 1, batch: 10, batches: 120 }, { compute: true, numBatches: 240 }, false, 'f'), 130 - 260);
    assert.equal(resumeOffset({ step: 100, epoch: 0, batch: 100, batches: 120 }, { compute: true, numBatches: 120 }, false, 'f'), 0);
    assert.equal(resumeOffset({ step: 100, epoch: 0, batch: 100 }, { compute: true, numBatches: 80 }, false, 'f'), 0);
    assert.throws(() => resumeOffset({ step: 100, epoch: 0, batch: 100, batches: 120 }, { compute: true, numBatches: 80 }, true, 'ck'), /ck: written with 120 batches per epoch, this run has 80/);
  });
});
