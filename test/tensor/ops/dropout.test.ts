import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { backend, backward, dropout } from '../../../src/tensor/index.js';
import { dropMask } from '../../../src/tensor/ops/dropout.js';
import { dropoutWord } from '../../../src/util/philox.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, full, gradOf, onDevice, seedFor, storage, valuesOf, zeros } from '../../helpers/on_device.js';
import { Rng, leaf, randn } from '../../helpers/tensors.js';

/** A mask of n elements drawn by the backend under test, read back. */
async function maskOf(rng: Rng, p: number, n: number): Promise<Float32Array> {
  return Float32Array.from(await dropMask(rng, p, storage(new Float32Array(n), 'float32')).read());
}

describe('dropout', () => {
  it('gradcheck with a fixed mask seed', async () => {
    // The mask is drawn from the Rng on every call; a fresh Rng(seed) per call keeps it fixed.
    for (const p of [0.3, 0.5, 0]) {
      await gradcheckOnBackend((x) => dropout(x, p, new Rng(99)), [randn([4, 5], new Rng(1))], { name: `dropout p=${p}` });
    }
    await gradcheckOnBackend((x) => dropout(x, 0.5, new Rng(99), false), [randn([3, 2], new Rng(2))], { name: 'dropout eval' });
  });
  it('forward: survivors are scaled by 1/(1-p), the rest are 0; the same seed gives the same mask', async () => {
    const x = full([4000], 2, 'float64');
    const y = await valuesOf(dropout(x, 0.25, new Rng(5)));
    const kept = y.filter((v) => v !== 0);
    assertValues(kept, kept.map(() => 2 / 0.75));
    const frac = 1 - kept.length / y.length;
    assert.ok(Math.abs(frac - 0.25) < 0.03, `dropped fraction ${frac}`);
    assert.deepEqual(await valuesOf(dropout(x, 0.25, new Rng(5))), y);
    assert.notDeepEqual(await valuesOf(dropout(x, 0.25, new Rng(6))), y);
    // float32 and float64 draw the same mask from the same seed
    const y32 = await valuesOf(dropout(full([4000], 2), 0.25, new Rng(5)));
    assert.deepEqual(y32.map((v) => v !== 0), y.map((v) => v !== 0));
  });
  it('the mask kernel is Philox keyed by the Rng\'s next two words, bit for bit; the Rng moves by those two only', async () => {
    const k = backend();
    for (const [n, p] of [[10_001, 0.1], [3, 0.5], [100_003, 0.75]] as const) {
      const a = new Rng(42);
      const b = new Rng(42);
      a.normal();
      b.normal(); // a cached spare normal survives the mask
      const got = await maskOf(a, p, n);
      const [k0, k1] = [b.nextUint32(), b.nextUint32()];
      const scratch = new Uint32Array(4);
      const want = Float32Array.from({ length: n }, (_, i) => (dropoutWord(k0, k1, i, scratch) / 2 ** 32 < p ? 0 : 1 / (1 - p)));
      assert.deepEqual(got, want, `${k.name}: n ${n}, p ${p}`);
      assert.equal(a.normal(), b.normal(), `${k.name}: spare normal kept`);
      assert.equal(a.uniform(), b.uniform(), `${k.name}: stream continues in step`);
    }
  });
  it('keeps each element with probability 1 - p, independently of its neighbours and of the previous mask', async () => {
    const n = 200_000;
    const rng = new Rng(3);
    for (const p of [0.1, 0.5, 0.9]) {
      const first = await maskOf(rng, p, n);
      const second = await maskOf(rng, p, n);
      const sd = Math.sqrt(p * (1 - p) / n);
      const dropped = first.filter((v) => v === 0).length / n;
      assert.ok(Math.abs(dropped - p) < 5 * sd, `p ${p}: dropped ${dropped}`);
      // Both dropped: p² for independent draws, for neighbours within a Philox block and across calls.
      const both = (x: Float32Array, y: Float32Array, shift: number): number => {
        let c = 0;
        for (let i = 0; i + shift < n; i++) if (x[i] === 0 && y[i + shift] === 0) c++;
        return c / (n - shift);
      };
      const sdBoth = Math.sqrt(p * p * (1 - p * p) / n);
      for (const [what, v] of [['neighbour', both(first, first, 1)], ['4 apart', both(first, first, 4)], ['next mask', both(first, second, 0)]] as const) {
        assert.ok(Math.abs(v - p * p) < 6 * sdBoth, `p ${p}: ${what} both dropped ${v}, want ${p * p}`);
      }
    }
  });
  it('the gradient is the mask', async () => {
    const x = leaf(full([50], 1, 'float64'));
    const y = dropout(x, 0.5, new Rng(7));
    backward(y, seedFor(y, new Array(50).fill(1)));
    assert.deepEqual(await gradOf(x), await valuesOf(y));
  });
  it('identity in eval mode and for p = 0 (no randomness consumed)', () => {
    const x = onDevice(randn([3, 3], new Rng(1)));
    assert.equal(dropout(x, 0.5, new Rng(1), false), x);
    assert.equal(dropout(x, 0, new Rng(1)), x);
  });
  it('p outside [0, 1) is refused, naming the op', () => {
    const x = zeros([2]);
    assert.throws(() => dropout(x, 1, new Rng(1)), /^Error: dropout: p must be in \[0, 1\), got 1/);
    assert.throws(() => dropout(x, -0.1, new Rng(1)), /dropout: p must be in \[0, 1\), got -0.1/);
  });
});
