import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Conv2d, Linear, type InitName, createModel, fans, initializers, kaimingNormal, kaimingUniform,
  torchDefaultUniform, xavierNormal, xavierUniform,
} from '../../src/nn/index.js';
import type { ModelSpec } from '../../src/nn/models/index.js';
import { Rng } from '../../src/util/rng.js';

function stats(a: ArrayLike<number>): { mean: number; std: number; min: number; max: number } {
  let sum = 0;
  let sumSq = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < a.length; i++) {
    sum += a[i];
    sumSq += a[i] * a[i];
    if (a[i] < min) min = a[i];
    if (a[i] > max) max = a[i];
  }
  const mean = sum / a.length;
  return { mean, std: Math.sqrt(sumSq / a.length - mean * mean), min, max };
}

// A large weight: 256·400 = 102,400 samples, so the sample std is within ~0.3% of the true one
// (relative standard error 1/√(2n)); the tolerances below are several times wider.
const SHAPE = [256, 400];
const CONV_SHAPE = [64, 32, 5, 5]; // fanIn 800, fanOut 1600, 51,200 samples

describe('init', () => {
  it('fans follow torch: fanIn = in·∏kernel, fanOut = out·∏kernel', () => {
    assert.deepEqual(fans([10, 20]), { fanIn: 20, fanOut: 10 });
    assert.deepEqual(fans([8, 3, 5, 5]), { fanIn: 75, fanOut: 200 });
    assert.deepEqual(fans([7]), { fanIn: 1, fanOut: 7 });
  });

  const uniformBounds: [InitName, (s: readonly number[]) => number][] = [
    ['torch', (s) => 1 / Math.sqrt(fans(s).fanIn)],
    ['kaiming-uniform', (s) => Math.sqrt(6 / fans(s).fanIn)],
    ['xavier-uniform', (s) => Math.sqrt(6 / (fans(s).fanIn + fans(s).fanOut))],
  ];
  for (const [name, boundOf] of uniformBounds) {
    it(`${name}: U(±bound) — inside the bound, reaching it, mean 0, std bound/√3`, () => {
      for (const shape of [SHAPE, CONV_SHAPE]) {
        const bound = boundOf(shape);
        const t = initializers[name](shape, new Rng(7));
        assert.deepEqual(t.shape, shape);
        assert.equal(t.dtype, 'float32');
        const s = stats(t.values());
        assert.ok(s.min >= -bound && s.max <= bound, `${name} ${shape}: values [${s.min}, ${s.max}] outside ±${bound}`);
        assert.ok(s.min < -0.999 * bound && s.max > 0.999 * bound, `${name} ${shape}: values [${s.min}, ${s.max}] do not span ±${bound}`);
        assert.ok(Math.abs(s.mean) < 0.02 * bound, `${name} ${shape}: mean ${s.mean}`);
        const std = bound / Math.sqrt(3);
        assert.ok(Math.abs(s.std / std - 1) < 0.02, `${name} ${shape}: std ${s.std}, expected ${std}`);
      }
    });
  }

  const normalStds: [InitName, (s: readonly number[]) => number][] = [
    ['kaiming-normal', (s) => Math.sqrt(2 / fans(s).fanIn)],
    ['xavier-normal', (s) => Math.sqrt(2 / (fans(s).fanIn + fans(s).fanOut))],
  ];
  for (const [name, stdOf] of normalStds) {
    it(`${name}: N(0, std²) — mean 0, std as the formula, Gaussian tails`, () => {
      for (const shape of [SHAPE, CONV_SHAPE]) {
        const std = stdOf(shape);
        const t = initializers[name](shape, new Rng(8));
        const s = stats(t.values());
        assert.ok(Math.abs(s.mean) < 0.02 * std, `${name} ${shape}: mean ${s.mean}`);
        assert.ok(Math.abs(s.std / std - 1) < 0.02, `${name} ${shape}: std ${s.std}, expected ${std}`);
        // A normal, not a uniform: about 4.55% of samples lie beyond 2σ, and some beyond 3.5σ.
        let beyond2 = 0;
        for (const v of t.values()) if (Math.abs(v) > 2 * std) beyond2++;
        const frac = beyond2 / t.size;
        assert.ok(frac > 0.04 && frac < 0.051, `${name} ${shape}: ${frac} of samples beyond 2σ`);
        assert.ok(s.max > 3.5 * std && s.min < -3.5 * std, `${name} ${shape}: no tails ([${s.min}, ${s.max}])`);
      }
    });
  }

  it('the named functions are the registered initializers', () => {
    assert.equal(initializers.torch, torchDefaultUniform);
    assert.equal(initializers['kaiming-uniform'], kaimingUniform);
    assert.equal(initializers['kaiming-normal'], kaimingNormal);
    assert.equal(initializers['xavier-uniform'], xavierUniform);
    assert.equal(initializers['xavier-normal'], xavierNormal);
  });

  it('every initializer: same seed → identical values, different seed → different', () => {
    for (const name of Object.keys(initializers) as InitName[]) {
      const a = initializers[name]([32, 16], new Rng(1)).values();
      const b = initializers[name]([32, 16], new Rng(1)).values();
      const c = initializers[name]([32, 16], new Rng(2)).values();
      assert.deepEqual(a, b, `${name} not reproducible`);
      assert.notDeepEqual(a, c, `${name} ignores the seed`);
    }
  });

  it('Linear and Conv2d biases are U(±1/√fanIn) as in torch; weights follow the init option', () => {
    const lin = new Linear(400, 2000, new Rng(3));
    const lb = 1 / Math.sqrt(400);
    const sb = stats(lin.bias!.values());
    assert.ok(sb.min >= -lb && sb.max <= lb && sb.max > 0.99 * lb && sb.min < -0.99 * lb, `Linear bias range [${sb.min}, ${sb.max}]`);
    const sw = stats(lin.weight.values());
    assert.ok(sw.max <= lb && sw.max > 0.999 * lb, 'Linear weight: torch default U(±1/√in)');

    const conv = new Conv2d(16, 2000, 3, new Rng(4));
    const cb = 1 / Math.sqrt(16 * 9);
    const sc = stats(conv.bias!.values());
    assert.ok(sc.min >= -cb && sc.max <= cb && sc.max > 0.99 * cb, `Conv2d bias range [${sc.min}, ${sc.max}]`);

    const he = new Linear(400, 256, new Rng(5), { init: 'kaiming-normal' });
    const sh = stats(he.weight.values());
    assert.ok(Math.abs(sh.std / Math.sqrt(2 / 400) - 1) < 0.02, `kaiming-normal Linear std ${sh.std}`);
    assert.equal(new Linear(4, 3, new Rng(5), { bias: false }).bias, null);
    assert.equal(new Linear(4, 3, new Rng(5), { bias: false }).numParameters(), 12);
  });

  it('models: the seed alone determines the initial arena', () => {
    const specs: ModelSpec[] = [
      { type: 'mlp', inputDim: 784, hidden: [64, 32], out: 10 },
      { type: 'cnn', inChannels: 1, inputSize: 28, out: 10 },
    ];
    for (const spec of specs) {
      const a = createModel(spec, 42).arena().params.readSync();
      const b = createModel(spec, 42).arena().params.readSync();
      const c = createModel(spec, 43).arena().params.readSync();
      assert.deepEqual(a, b, `${spec.type}: same seed gave different parameters`);
      let same = 0;
      for (let i = 0; i < a.length; i++) if (a[i] === c[i]) same++;
      assert.ok(same < a.length * 0.01, `${spec.type}: seeds 42 and 43 share ${same} of ${a.length} values`);
    }
  });
});
