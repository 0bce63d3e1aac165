import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { buildMlp } from '../../../src/nn/models/mlp.js';
import { backward } from '../../../src/tensor/autograd.js';
import { mseLoss } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { runStage } from '../../../src/parallel/pipeline/executor.js';
import { pipelineSchedule } from '../../../src/parallel/pipeline/schedule.js';
import { planStages } from '../../../src/parallel/pipeline/stage_plan.js';

const SPEC = { type: 'mlp' as const, inputDim: 5, hidden: [7, 6, 7, 6, 5, 6, 7], out: 3 };
const MICRO = 3;

function batch(M: number): { x: Float32Array; y: Float32Array } {
  const rng = Rng.derive(7, M);
  const fill = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.uniform() * 2 - 1);
  return { x: fill(M * MICRO * SPEC.inputDim), y: fill(M * MICRO * SPEC.out) };
}

const microInput = (b: { x: Float32Array }, k: number): Tensor => Tensor.fromHost(b.x.slice(k * MICRO * SPEC.inputDim, (k + 1) * MICRO * SPEC.inputDim), [MICRO, SPEC.inputDim]);
const microLoss = (b: { y: Float32Array }, out: Tensor, k: number): { loss: Tensor; weight: number } =>
  ({ loss: mseLoss(out, Tensor.fromHost(b.y.slice(k * MICRO * SPEC.out, (k + 1) * MICRO * SPEC.out), [MICRO, SPEC.out])), weight: MICRO });

/** One process: Σ_k w_k ∇loss_k, layer after layer. */
function reference(M: number): Float32Array {
  const model = buildMlp(SPEC, 1);
  model.zeroGrad();
  const b = batch(M);
  for (let k = 0; k < M; k++) {
    let y = microInput(b, k);
    for (const layer of model.layers) y = layer.forward(y);
    const { loss, weight } = microLoss(b, y, k);
    backward(loss, Float32Array.of(weight));
  }
  return model.arena().grads.readSync().slice();
}

async function pipelined(P: number, M: number, schedule: 'gpipe' | '1f1b'): Promise<{ grad: Float32Array; peakLive: number[] }> {
  const groups = createInProcessTransports(P, { timeoutMs: 5000 }).map((t) => new ProcessGroup(t));
  const layers = buildMlp(SPEC, 1).layers.length;
  const { ranges } = planStages(new Array(layers).fill(1), new Array(P).fill({ speed: 1 }));
  const b = batch(M);
  // Each stage builds the whole model from the seed but runs and owns only its own layers.
  const models = ranges.map(() => buildMlp(SPEC, 1));
  models.forEach((m) => m.zeroGrad());
  const results = await Promise.all(ranges.map(([from, to], s) => runStage(groups[s], {
    forward: (x) => models[s].layers.slice(from, to).reduce((y, l) => l.forward(y), x),
    input: (k) => microInput(b, k),
    loss: (out, k) => microLoss(b, out, k),
  }, pipelineSchedule(schedule, s, P, M))));
  // Gather each stage's own layers' gradients into one vector in the full model's layout.
  const grad = new Float32Array(models[0].arena().size);
  ranges.forEach(([from, to], s) => {
    const own = new Set(models[s].layers.slice(from, to).flatMap((l) => l.parameters()));
    for (const [name, p] of models[s].namedParameters()) {
      if (own.has(p)) grad.set(p.gradValues() as Float32Array, models[s].arena().entries.find((e) => e.name === name)!.offset);
    }
  });
  const last = results[P - 1];
  assert.equal(last.weight, M * MICRO);
  await Promise.all(groups.map((g) => g.close()));
  return { grad, peakLive: results.map((r) => r.peakLive) };
}

test('pipelined gradients equal one process within 1e-5 relative (P=2,4; M=1..8; gpipe and 1f1b)', async () => {
  for (const P of [2, 4]) {
    for (let M = 1; M <= 8; M++) {
      const want = reference(M);
      for (const schedule of ['gpipe', '1f1b'] as const) {
        const { grad, peakLive } = await pipelined(P, M, schedule);
        let scale = 0;
        for (const v of want) scale = Math.max(scale, Math.abs(v));
        assert.ok(scale > 0);
        for (let i = 0; i < want.length; i++) assert.ok(Math.abs(grad[i] - want[i]) <= 1e-5 * scale, `P=${P} M=${M} ${schedule} [${i}] ${grad[i]} vs ${want[i]}`);
        if (schedule === '1f1b') assert.ok(peakLive[0] <= P, `stage 0 held ${peakLive[0]} micro-batches of activations under 1f1b, P=${P}`);
        else assert.equal(peakLive[0], M);
      }
    }
  }
});

test('a first stage with nothing to train (frozen layers) takes its gradient and runs no backward; the next stage gets its gradients', async () => {
  const M = 2;
  const groups = createInProcessTransports(2, { timeoutMs: 5000 }).map((t) => new ProcessGroup(t));
  const layers = buildMlp(SPEC, 1).layers.length;
  const { ranges } = planStages(new Array(layers).fill(1), [{ speed: 1 }, { speed: 1 }]);
  const b = batch(M);
  const models = ranges.map(() => buildMlp(SPEC, 1));
  const [from0, to0] = ranges[0];
  for (const l of models[0].layers.slice(from0, to0)) for (const p of l.parameters()) p.requiresGrad = false;
  models.forEach((m) => m.zeroGrad());
  await Promise.all(ranges.map(([from, to], s) => runStage(groups[s], {
    forward: (x) => models[s].layers.slice(from, to).reduce((y, l) => l.forward(y), x),
    input: (k) => microInput(b, k),
    loss: (out, k) => microLoss(b, out, k),
  }, pipelineSchedule('1f1b', s, 2, M))));
  const want = reference(M);
  const [from1, to1] = ranges[1];
  const own = new Set(models[1].layers.slice(from1, to1).flatMap((l) => l.parameters()));
  let checked = 0;
  for (const [name, p] of models[1].namedParameters()) {
    if (!own.has(p)) continue;
    const offset = models[1].arena().entries.find((e) => e.name === name)!.offset;
    const got = p.gradValues() as Float32Array;
    for (let i = 0; i < got.length; i++, checked++) assert.ok(Math.abs(got[i] - want[offset + i]) <= 1e-5 * (Math.abs(want[offset + i]) + 1e-3), `${name}[${i}]`);
  }
  assert.ok(checked > 0);
  await Promise.all(groups.map((g) => g.close()));
});
