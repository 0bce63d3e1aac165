import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, AdamW, type Optimizer, makeOptimizer } from '../../../src/nn/optim/index.js';
import { assertClose } from '../../helpers/tensors.js';
import { ADAM_F32, GRADS, LRS, P0, arenaOf } from './common.js';

function trajectory(make: (a: ReturnType<typeof arenaOf>) => Optimizer, grads = GRADS, lrs = LRS): number[][] {
  const arena = arenaOf();
  const opt = make(arena);
  return grads.map((g, i) => {
    arena.grads.readSync().set(g);
    opt.lr = lrs[i];
    opt.step();
    return Array.from(arena.params.readSync());
  });
}

describe('Adam / AdamW (torch.optim semantics)', () => {
  it('step 1 with bias correction moves every parameter by lr·g/(|g|+eps) — about lr·sign(g)', () => {
    const [s1] = trajectory((a) => new Adam(a, { lr: 0.1 }));
    // m̂ = g and v̂ = g², so the update is lr·g/(|g| + eps); a zero gradient gives no update.
    const expected = P0.map((p, j) => p - (0.1 * GRADS[0][j]) / (Math.abs(GRADS[0][j]) + 1e-8));
    assertClose(s1, expected, ADAM_F32);
    assertClose(s1, [0.4, -1.15, 1.9, 0.1], ADAM_F32);
  });

  it('closed form for a constant gradient: every step is lr·g/(|g|+eps) (bias correction exact)', () => {
    const g = [0.1, -0.2, 0.3, -0.4];
    const n = 6;
    const steps = trajectory((a) => new Adam(a, { lr: 0.01 }), Array(n).fill(g), Array(n).fill(0.01));
    steps.forEach((s, i) => {
      const expected = P0.map((p, j) => p - ((i + 1) * 0.01 * g[j]) / (Math.abs(g[j]) + 1e-8));
      assertClose(s, expected, { rtol: 1e-5, atol: 1e-6, msg: `step ${i + 1}` });
    });
  });

  it('moments by hand over three different gradients (β1 0.9, β2 0.999, no decay)', () => {
    const steps = trajectory((a) => new Adam(a, { lr: 0.1 }));
    const m = [0, 0, 0, 0];
    const v = [0, 0, 0, 0];
    const p = P0.slice();
    GRADS.forEach((g, i) => {
      const t = i + 1;
      for (let j = 0; j < 4; j++) {
        m[j] = 0.9 * m[j] + 0.1 * g[j];
        v[j] = 0.999 * v[j] + 0.001 * g[j] * g[j];
        const mHat = m[j] / (1 - 0.9 ** t);
        const vHat = v[j] / (1 - 0.999 ** t);
        p[j] -= (LRS[i] * mHat) / (Math.sqrt(vHat) + 1e-8);
      }
      assertClose(steps[i], p, { rtol: 1e-5, atol: 1e-6, msg: `step ${i + 1}` });
    });
  });

  it('custom betas and eps are used', () => {
    const [s1, s2] = trajectory((a) => new Adam(a, { lr: 0.1, beta1: 0.5, beta2: 0.9, eps: 0.1 }));
    const p = P0.slice();
    const m = [0, 0, 0, 0];
    const v = [0, 0, 0, 0];
    [s1, s2].forEach((s, i) => {
      const t = i + 1;
      for (let j = 0; j < 4; j++) {
        m[j] = 0.5 * m[j] + 0.5 * GRADS[i][j];
        v[j] = 0.9 * v[j] + 0.1 * GRADS[i][j] ** 2;
        p[j] -= (LRS[i] * (m[j] / (1 - 0.5 ** t))) / (Math.sqrt(v[j] / (1 - 0.9 ** t)) + 0.1);
      }
      assertClose(s, p, { rtol: 1e-5, atol: 1e-6, msg: `step ${t}` });
    });
  });

  // Reference values from torch 1.13.0 (Debian python3-torch), made once with the script described
  // in sgd.test.ts: P0, GRADS and per-step LRS set through opt.param_groups[0]['lr'].
  it('Adam with weight decay 0.1 (L2 in the gradient) matches torch 1.13', () => {
    const steps = trajectory((a) => new Adam(a, { lr: 0.1, weightDecay: 0.1 }));
    const torch = [
      [0.40000003576278687, -1.149999976158142, 1.899999976158142, 0.10000000149011612],
      [0.35212552547454834, -1.156832218170166, 1.8711711168289185, 0.13256210088729858],
      [0.377208411693573, -1.1739696264266968, 1.722611665725708, 0.07033047080039978],
    ];
    steps.forEach((s, i) => assertClose(s, torch[i], { ...ADAM_F32, msg: `step ${i + 1}` }));
  });

  it('AdamW with weight decay 0.1 (decoupled: p ← p·(1 − lr·wd) − …) matches torch 1.13', () => {
    const steps = trajectory((a) => new AdamW(a, { lr: 0.1, weightDecay: 0.1 }));
    const torch = [
      [0.39500001072883606, -1.1374999284744263, 1.8799999952316284, 0.10000000149011612],
      [0.34641602635383606, -1.1539232730865479, 1.8686938285827637, 0.13300290703773499],
      [0.4089324176311493, -1.2214001417160034, 1.767798662185669, 0.07074341922998428],
    ];
    steps.forEach((s, i) => assertClose(s, torch[i], { ...ADAM_F32, msg: `step ${i + 1}` }));
    // Step 1 by hand: 0.5·(1 − 0.1·0.1) − 0.1·sign(0.1) = 0.395.
    assert.ok(Math.abs(steps[0][0] - 0.395) < 1e-6);
  });

  it('AdamW defaults to weight decay 0.01 (torch), Adam to 0', () => {
    const steps = trajectory((a) => new AdamW(a, { lr: 0.1 }));
    const torch = [
      [0.3995000123977661, -1.1487499475479126, 1.8980000019073486, 0.10000000149011612],
      [0.35269126296043396, -1.1702864170074463, 1.8951448202133179, 0.13345292210578918],
      [0.4214306175708771, -1.2585011720657349, 1.8278332948684692, 0.07358657568693161],
    ];
    steps.forEach((s, i) => assertClose(s, torch[i], { ...ADAM_F32, msg: `step ${i + 1}` }));
    const [adam1] = trajectory((a) => new Adam(a, { lr: 0.1 }));
    assertClose(adam1, [0.4, -1.15, 1.9, 0.1], ADAM_F32);
  });

  it('decoupled decay differs from L2 decay', () => {
    const l2 = trajectory((a) => new Adam(a, { lr: 0.1, weightDecay: 0.1 }));
    const decoupled = trajectory((a) => new AdamW(a, { lr: 0.1, weightDecay: 0.1 }));
    assert.notDeepEqual(l2[0], decoupled[0]);
  });

  it('state: m and v the size of the arena; makeOptimizer builds adam and adamw', () => {
    const a = arenaOf();
    const adam = makeOptimizer(a, { name: 'adam', lr: 0.1 });
    assert.ok(adam instanceof Adam && !(adam instanceof AdamW));
    assert.equal(adam.stateBuffers().length, 2);
    assert.ok(adam.stateBuffers().every((b) => b.length === a.size));
    const w = makeOptimizer(arenaOf(), { name: 'adamw', lr: 0.1, weightDecay: 0.1 });
    assert.ok(w instanceof AdamW);
    assert.throws(() => new Adam(arenaOf(), { lr: -0.1 }), /learning rate must be zero or positive/);
    // At 0 (torch takes it) AdamW's step, decoupled decay included, moves nothing.
    const frozen = arenaOf();
    const zero = makeOptimizer(frozen, { name: 'adamw', lr: 0, weightDecay: 0.1 });
    frozen.grads.readSync().set([0.5, -1, 2, 0.25].slice(0, frozen.size));
    zero.step();
    assert.deepEqual(Array.from(frozen.params.readSync()), Array.from(arenaOf().params.readSync()));
  });
});
