/**
 * gradSquares: Σ g² of each arena entry, on the cpu at once and from a GPU arena (webgpu on
 * SwiftShader where there is no GPU) through one awaited read per entry; skipped when webgpu cannot
 * load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ParamArena } from '../../../src/nn/arena.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { gradSquares } from '../../../src/train/loop/grad_squares.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

function arena(device: string): ParamArena {
  const a = ParamArena.pack([['w', Tensor.from([1, 2, 3], [3])], ['b', Tensor.from([4], [1])]], new Set(), device);
  a.grads.write([1, -2, 3, 0.5]);
  return a;
}

let load: WebGpuLoad;

describe('gradSquares', () => {
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
  });
  after(() => closeWebGpu());

  it('sums each entry\'s squared gradient on the cpu, or a chosen subset of entries', async () => {
    const a = arena('cpu');
    assert.deepEqual(await gradSquares(a), [14, 0.25]);
    assert.deepEqual(await gradSquares(a, a.entries.slice(1)), [0.25]);
  });

  it('reads the same sums from a webgpu arena', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    assert.deepEqual(await gradSquares(arena('webgpu')), [14, 0.25]);
  });
});
