import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SGD, makeOptimizer } from '../../../src/nn/optim/index.js';
import { assertClose } from '../../helpers/tensors.js';
import { F32, GRADS, LRS, P0, arenaOf } from './common.js';

/** Runs the optimizer over GRADS with the per-step LRS; returns the parameters after each step. */
function trajectory(make: (a: ReturnType<typeof arenaOf>) => SGD): number[][] {
  const arena = arenaOf();
  const opt = make(arena);
  return GRADS.map((g, i) => {
    arena.grads.readSync().set(g);
    opt.lr = LRS[i];
    opt.step();
    return Array.from(arena.params.readSync());
  });
}

describe('SGD (torch.optim.SGD semantics)', () => {
  it('plain: p ← p − lr·g', () => {
    const steps = trajectory((a) => new SGD(a, { lr: 1 }));
    const expected = P0.slice();
    GRADS.forEach((g, i) => {
      for (let j = 0; j < 4; j++) expected[j] -= LRS[i] * g[j];
      assertClose(steps[i], expected, { ...F32, msg: `step ${i + 1}` });
    });
  });

  it('momentum: the first step sets buf = g (no dampening), later buf = μ·buf + (1−τ)·g', () => {
    const mu = 0.9;
    const tau = 0.3;
    const steps = trajectory((a) => new SGD(a, { lr: 1, momentum: mu, dampening: tau }));
    const buf = [0, 0, 0, 0];
    const p = P0.slice();
    GRADS.forEach((g, i) => {
      for (let j = 0; j < 4; j++) {
        buf[j] = i === 0 ? g[j] : mu * buf[j] + (1 - tau) * g[j];
        p[j] -= LRS[i] * buf[j];
      }
      assertClose(steps[i], p, { ...F32, msg: `step ${i + 1}` });
    });
    // Step 1 by hand: p − lr·g exactly as plain SGD (torch copies the gradient into the buffer).
    assertClose(steps[0], [0.49, -1.23, 1.97, 0.04], F32);
  });

  it('Nesterov: step = g + μ·buf', () => {
    const mu = 0.8;
    const steps = trajectory((a) => new SGD(a, { lr: 1, momentum: mu, nesterov: true }));
    const buf = [0, 0, 0, 0];
    const p = P0.slice();
    GRADS.forEach((g, i) => {
      for (let j = 0; j < 4; j++) {
        buf[j] = i === 0 ? g[j] : mu * buf[j] + g[j];
        p[j] -= LRS[i] * (g[j] + mu * buf[j]);
      }
      assertClose(steps[i], p, { ...F32, msg: `step ${i + 1}` });
    });
  });

  it('weight decay adds wd·p to the gradient (L2), before momentum', () => {
    const wd = 0.5;
    const steps = trajectory((a) => new SGD(a, { lr: 1, weightDecay: wd }));
    const p = P0.slice();
    GRADS.forEach((g, i) => {
      for (let j = 0; j < 4; j++) p[j] -= LRS[i] * (g[j] + wd * p[j]);
      assertClose(steps[i], p, { ...F32, msg: `step ${i + 1}` });
    });
  });

  // Reference values from torch 1.13.0 (Debian python3-torch), made once by this script:
  //   p = torch.tensor(P0, requires_grad=True); opt = torch.optim.SGD([p], lr=0.1, ...)
  //   for g, lr in zip(GRADS, LRS): opt.param_groups[0]['lr'] = lr; p.grad = torch.tensor(g); opt.step()
  // (the same script produced the Adam/AdamW references in adam.test.ts and the clip reference).
  it('matches torch 1.13: momentum 0.9, dampening 0.3, weight decay 0.01', () => {
    const steps = trajectory((a) => new SGD(a, { lr: 0.1, momentum: 0.9, dampening: 0.3, weightDecay: 0.01 }));
    const torch = [
      [0.4894999861717224, -1.2287499904632568, 1.968000054359436, 0.04000000283122063],
      [0.48285365104675293, -1.2362574338912964, 1.9616612195968628, 0.057986002415418625],
      [0.5002508759498596, -1.2755534648895264, 1.9080952405929565, 0.02465442568063736],
    ];
    steps.forEach((s, i) => assertClose(s, torch[i], { ...F32, msg: `step ${i + 1}` }));
  });

  it('matches torch 1.13: Nesterov, momentum 0.8, weight decay 0.05', () => {
    const steps = trajectory((a) => new SGD(a, { lr: 0.1, momentum: 0.8, nesterov: true, weightDecay: 0.05 }));
    const torch = [
      [0.47749999165534973, -1.2027499675750732, 1.9279999732971191, 0.07200000435113907],
      [0.46685123443603516, -1.2339376211166382, 1.9290239810943604, 0.08447600901126862],
      [0.5441918969154358, -1.2771492004394531, 1.8010023832321167, -0.1285453736782074],
    ];
    steps.forEach((s, i) => assertClose(s, torch[i], { ...F32, msg: `step ${i + 1}` }));
  });

  it('Nesterov without momentum, or with dampening, is refused (as torch does)', () => {
    assert.throws(() => new SGD(arenaOf(), { lr: 0.1, nesterov: true }), /Nesterov momentum requires momentum > 0 and dampening = 0/);
    assert.throws(() => new SGD(arenaOf(), { lr: 0.1, nesterov: true, momentum: 0 }), /Nesterov/);
    assert.throws(() => new SGD(arenaOf(), { lr: 0.1, nesterov: true, momentum: 0.9, dampening: 0.1 }), /Nesterov/);
  });

  it('refuses a negative learning rate; at 0 (torch takes it) a step with momentum and weight decay moves nothing', () => {
    assert.throws(() => new SGD(arenaOf(), { lr: -1 }), /learning rate must be zero or positive, got -1/);
    assert.throws(() => new SGD(arenaOf(), { lr: NaN }), /learning rate must be zero or positive/);
    const arena = arenaOf();
    const opt = new SGD(arena, { lr: 0, momentum: 0.9, weightDecay: 0.1 });
    for (const g of GRADS) {
      arena.grads.readSync().set(g);
      opt.step();
    }
    assert.deepEqual(Array.from(arena.params.readSync()), Array.from(Float32Array.from(P0)));
  });

  it('state: one momentum buffer the size of the arena (none without momentum); steps counted', () => {
    const a = arenaOf();
    const opt = new SGD(a, { lr: 0.1, momentum: 0.9 });
    assert.equal(opt.stateBuffers().length, 1);
    assert.equal(opt.stateBuffers()[0].length, a.size);
    a.grads.write(GRADS[0]);
    opt.step();
    opt.step();
    assert.equal(opt.steps, 2);
    assertClose(opt.stateBuffers()[0], GRADS[0].map((g) => g + 0.9 * g), { ...F32, msg: 'buf after two equal gradients' });
    assert.equal(new SGD(arenaOf(), { lr: 0.1 }).stateBuffers().length, 0);
  });

  it('makeOptimizer builds SGD with momentum, Nesterov and weight decay from a config', () => {
    const a = arenaOf();
    const opt = makeOptimizer(a, { name: 'sgd', lr: 0.1, momentum: 0.8, nesterov: true, weightDecay: 0.05 });
    assert.ok(opt instanceof SGD);
    GRADS.forEach((g, i) => {
      a.grads.write(g);
      opt.lr = LRS[i];
      opt.step();
    });
    assertClose(a.params.readSync(), [0.5441918969154358, -1.2771492004394531, 1.8010023832321167, -0.1285453736782074], F32);
  });
});
