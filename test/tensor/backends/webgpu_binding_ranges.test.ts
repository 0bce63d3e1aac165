/**
 * Storages larger than the device's binding limit (maxStorageBufferBindingSize: 1 GiB on
 * SwiftShader, 2 GiB on Vulkan), with the limit lowered in our binding code (stream.maxBindingBytes,
 * as SMOLCLUSTER_WEBGPU_MAX_BINDING_BYTES does) so that a test-sized arena is several times it:
 * a kernel on a view inside such a buffer binds only the view's range (its start aligned down,
 * the rest in the uniforms), kernels over a whole storage run in pieces that each fit (rotary in
 * pieces of whole slices), a kernel whose view alone exceeds the limit is refused by name, a storage past maxBufferSize too, and
 * gpt2-tiny trains 2 steps with its arenas 5× the limit, equal to the cpu. On SwiftShader when
 * there is no GPU; skipped when the backend cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Kernels } from '../../../src/tensor/backend.js';
import { jsBackend } from '../../../src/tensor/backends/js.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { closeWebGpu, type WebGpuBackend, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import type { GpuBuf } from '../../../src/tensor/backends/webgpu/stream.js';
import { deviceMemory } from '../../../src/tensor/storage.js';
import { setBackend } from '../../../src/tensor/dispatch.js';
import { AdamW, SGD } from '../../../src/nn/index.js';
import { createModel, defaultSpec } from '../../../src/nn/models/index.js';
import type { Optimizer } from '../../../src/nn/optim/optimizer.js';
import type { Module } from '../../../src/nn/module.js';
import { backward } from '../../../src/tensor/autograd.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { sumOfSquares } from '../../../src/tensor/scalar.js';
import { scaleInPlace } from '../../../src/tensor/scale.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { assertClose } from '../../helpers/tensors.js';
import { WEBGPU_CHILD_ENV, loadWebGpuForTests } from '../../helpers/webgpu.js';
import { MAX_BINDING_ENV } from '../../../src/tensor/backends/webgpu/stream.js';

const INDEX = new URL('../../../src/tensor/backends/webgpu/index.js', import.meta.url).href;

type K = Kernels<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const js = hostKernels(jsBackend) as K;
const rnd = (r: Rng, n: number): Float32Array => Float32Array.from({ length: n }, () => r.normal());

let load: WebGpuLoad;
let gpu: WebGpuBackend;

/** Runs `fn` with the binding limit lowered to `bytes` (restored after). */
async function withBindingLimit<T>(bytes: number, fn: () => Promise<T> | T): Promise<T> {
  const before = gpu.stream.maxBindingBytes;
  gpu.stream.maxBindingBytes = bytes;
  try {
    return await fn();
  } finally {
    gpu.stream.maxBindingBytes = before;
  }
}

/** Elements per piece the backend splits a whole-storage kernel into under a limit of `bytes`. */
const pieceOf = (bytes: number): number => Math.floor((bytes - gpu.stream.bindingAlignment) / 4 / 256) * 256;

const LIMIT = 64 * 1024;

describe('webgpu storages larger than the binding limit', () => {
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
    if (load.backend) gpu = load.backend;
  });
  after(() => closeWebGpu());

  it('a kernel on a view that straddles a piece boundary, unaligned, binds only its range and equals the cpu', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const k = gpu as unknown as K;
    const memory = deviceMemory('webgpu');
    await withBindingLimit(LIMIT, async () => {
      const piece = pieceOf(LIMIT);
      const n = 3 * piece + 1000;
      const r = new Rng(3);
      const host = rnd(r, n);
      const big = memory.fromHost(host);
      const out = memory.fromHost(new Float32Array(n));
      assert.ok(big.byteLength > 3 * LIMIT, 'the storage is several times the limit');
      const rows = 10;
      const cols = 100;
      const at = piece - 37; // 37 elements before the first piece boundary, not on the 256-byte alignment
      const outAt = 2 * piece - 3;
      const ranged = gpu.stream.rangedBindings;
      // Softmax rows (one workgroup per row) from one view into another.
      k.softmax(k.subBuffer(big.buffer, at, rows * cols), rows, cols, k.subBuffer(out.buffer, outAt, rows * cols));
      // A GEMM whose A operand and C output are views of the large buffers: C (10×7) = A (10×100) · B (100×7).
      const b = rnd(r, cols * 7);
      const gB = memory.fromHost(b);
      const cAt = 3 * piece - 2;
      k.gemm(false, false, rows, 7, cols, 1, k.subBuffer(big.buffer, at, rows * cols), 0, gB.buffer, 0, 0, k.subBuffer(out.buffer, cAt, rows * 7), 0, 1);
      assert.ok(gpu.stream.rangedBindings >= ranged + 4, 'the large buffers were bound by range');
      const got = await out.read();
      const wantSoftmax = new Float32Array(rows * cols);
      js.softmax(host.subarray(at, at + rows * cols), rows, cols, wantSoftmax);
      assertClose(got.subarray(outAt, outAt + rows * cols), wantSoftmax, { rtol: 1e-5, atol: 1e-7, msg: 'softmax of the straddling view' });
      const wantC = new Float32Array(rows * 7);
      js.gemm(false, false, rows, 7, cols, 1, host.subarray(at, at + rows * cols), 0, b, 0, 0, wantC, 0, 1);
      assertClose(got.subarray(cAt, cAt + rows * 7), wantC, { rtol: 1e-4, atol: 1e-5, msg: 'gemm over the straddling view' });
      // Nothing else in the output was written.
      assert.equal(got.subarray(0, outAt).some((v) => v !== 0), false, 'elements before the softmax view untouched');
      for (const s of [big, out, gB]) s.dispose();
    });
  });

  it('siluMul and its backward over storages several times the limit run in pieces and equal the cpu', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const k = gpu as unknown as K;
    const memory = deviceMemory('webgpu');
    await withBindingLimit(LIMIT, async () => {
      const n = 3 * pieceOf(LIMIT) + 555;
      const pieces = Math.ceil(n / pieceOf(LIMIT));
      const r = new Rng(8);
      const host = [rnd(r, n), rnd(r, n), new Float32Array(n), rnd(r, n), rnd(r, n), rnd(r, n)];
      const dev = host.map((h) => memory.fromHost(h));
      const want = host.map((h) => Float32Array.from(h));
      const before = gpu.stream.dispatches.get('siluMulBackward') ?? 0;
      for (const kk of [k, js]) {
        const [gate, up, out, gy, gGate, gUp] = kk === js ? want : dev.map((s) => s.buffer);
        kk.siluMul(gate, up, out);
        kk.siluMulBackward(gate, up, gy, gGate, gUp);
      }
      assert.equal(gpu.stream.dispatches.get('siluMulBackward'), before + pieces, `the backward ran as ${pieces} pieces`);
      for (const i of [2, 4, 5]) assertClose(await dev[i].read(), want[i], { rtol: 1e-5, atol: 1e-6, msg: ['', '', 'out', '', 'gGate', 'gUp'][i] });
      for (const s of dev) s.dispose();
    });
  });

  it('rotary and its backward over storages several times the limit run in pieces of whole slices and equal the cpu', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const k = gpu as unknown as K;
    const memory = deviceMemory('webgpu');
    await withBindingLimit(LIMIT, async () => {
      const [T, D] = [33, 64];
      const slices = Math.ceil((3.5 * pieceOf(LIMIT)) / (T * D));
      const n = slices * T * D;
      const r = new Rng(9);
      const host = [rnd(r, n), rnd(r, T * D / 2), rnd(r, T * D / 2), new Float32Array(n), rnd(r, n), rnd(r, n)];
      const dev = host.map((h) => memory.fromHost(h));
      const want = host.map((h) => Float32Array.from(h));
      const before = gpu.stream.dispatches.get('rotary') ?? 0;
      for (const kk of [k, js]) {
        const [x, cos, sin, out, gy, gx] = kk === js ? want : dev.map((s) => s.buffer);
        kk.rotary(x, cos, sin, slices, T, D, out);
        kk.rotaryBackward(gy, cos, sin, slices, T, D, gx);
      }
      const pieces = Math.ceil(slices / Math.floor(pieceOf(LIMIT) / (T * D)));
      assert.ok(pieces >= 4, `${pieces} pieces`);
      assert.equal(gpu.stream.dispatches.get('rotary'), before + 2 * pieces, `each pass ran as ${pieces} pieces`);
      assertClose(await dev[3].read(), want[3], { rtol: 1e-5, atol: 1e-6, msg: 'rotary' });
      assertClose(await dev[5].read(), want[5], { rtol: 1e-5, atol: 1e-6, msg: 'rotaryBackward' });
      for (const s of dev) s.dispose();
    });
  });

  it('kernels over a whole storage run in pieces that fit: axpy, affine, fill, sgd, adam, sum of squares equal the cpu', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const k = gpu as unknown as K;
    const memory = deviceMemory('webgpu');
    await withBindingLimit(LIMIT, async () => {
      const piece = pieceOf(LIMIT);
      const n = 3 * piece + 777;
      const pieces = Math.ceil(n / piece);
      const r = new Rng(5);
      const host = [rnd(r, n), rnd(r, n), rnd(r, n), Float32Array.from(rnd(r, n), (v) => Math.abs(v))];
      const [p, g, m, v] = host.map((h) => memory.fromHost(h));
      const want = host.map((h) => Float32Array.from(h));
      const dispatched = (name: string): number => gpu.stream.dispatches.get(name) ?? 0;
      const adamBefore = dispatched('adam');
      const hyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decoupled: true, step: 3 };
      for (const kk of [k, js]) {
        const [bp, bg, bm, bv] = kk === js ? want : [p, g, m, v].map((s) => s.buffer);
        kk.axpy(0.5, bg, bm);
        kk.affine(bv, 0.25, 1, bv);
        kk.adamStep(bp, bg, bm, bv, hyper);
        kk.sgdStep(bg, bm, null, { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, firstStep: true });
      }
      assert.equal(dispatched('adam'), adamBefore + pieces, `adam ran as ${pieces} pieces`);
      const names = ['param', 'grad', 'm', 'v'];
      for (const [i, s] of [p, g, m, v].entries()) assertClose(await s.read(), want[i], { rtol: 1e-5, atol: 1e-6, msg: names[i] });
      const sq = memory.alloc('float64', 1);
      k.sumSquares(p.buffer, 1, sq.buffer);
      const exact = want[0].reduce((a, x) => a + x * x, 0);
      assertClose(await sq.read(), [exact], { rtol: 1e-5, msg: 'sum of squares over pieces' });
      k.fill(m.buffer, 2.5);
      assert.ok((await m.read()).every((x) => x === 2.5), 'fill reached every piece');
      for (const s of [p, g, m, v, sq]) s.dispose();
    });
  });

  it('two views of one large buffer too far apart for one binding get one each; overlapping ones are refused', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const k = gpu as unknown as K;
    const memory = deviceMemory('webgpu');
    await withBindingLimit(LIMIT, async () => {
      const n = LIMIT; // 4 × the limit in bytes
      const host = rnd(new Rng(9), n);
      const s = memory.fromHost(host);
      const [xAt, yAt, len] = [100, n - 1500, 1000];
      const ranged = gpu.stream.rangedBindings;
      k.axpy(2, k.subBuffer(s.buffer, xAt, len), k.subBuffer(s.buffer, yAt, len));
      assert.equal(gpu.stream.rangedBindings, ranged + 2, 'one binding per view');
      const want = Float32Array.from(host);
      js.axpy(2, host.subarray(xAt, xAt + len), want.subarray(yAt, yAt + len));
      assertClose(await s.read(), want, { rtol: 1e-6, atol: 1e-7, msg: 'y += 2x across the buffer' });
      const piece = pieceOf(LIMIT);
      assert.throws(() => k.axpy(1, k.subBuffer(s.buffer, 0, piece), k.subBuffer(s.buffer, piece - 10, piece)),
        /webgpu kernel axpy: x, y span \d+ bytes of one GPU buffer, more than one binding may \(maxStorageBufferBindingSize 65536 bytes\), and their own ranges overlap/);
      s.dispose();
    });
  });

  it(`${MAX_BINDING_ENV} lowers the limit a process binds under (in whole 256 bytes); a bad value is refused by name`, (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const script = `const m = await import(${JSON.stringify(INDEX)});
      try { const l = await m.loadWebGpuBackend(); console.log(l.backend ? l.backend.stream.maxBindingBytes : 'none: ' + l.reason); }
      catch (e) { console.log('error: ' + e.message); }
      m.closeWebGpu();`;
    const child = (value: string): string => {
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, ...WEBGPU_CHILD_ENV, [MAX_BINDING_ENV]: value }, encoding: 'utf8', timeout: 60_000,
      });
      assert.equal(run.status, 0, run.stderr);
      return run.stdout.trim().split('\n').pop()!;
    };
    assert.equal(child('300000'), String(Math.floor(300000 / 256) * 256));
    assert.equal(child('12'), `error: ${MAX_BINDING_ENV}=12: expected a whole number of bytes, at least 4096`);
  });

  it('a kernel whose own view exceeds the binding limit is refused by name; a storage past maxBufferSize too', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const k = gpu as unknown as K;
    const memory = deviceMemory('webgpu');
    await withBindingLimit(LIMIT, () => {
      const n = LIMIT; // 4 × the limit in bytes
      const x = memory.alloc('float32', n);
      const y = memory.alloc('float32', 1);
      assert.throws(() => k.reduceSum(x.buffer, 1, n, 1, y.buffer), /webgpu kernel reduceSum: x span \d+ bytes of one GPU buffer .*maxStorageBufferBindingSize 65536 bytes/);
      x.dispose();
      y.dispose();
    });
    const before = gpu.allocator.maxBufferBytes;
    gpu.allocator.maxBufferBytes = 1 << 20;
    try {
      assert.throws(() => memory.alloc('float32', (1 << 18) + 1), /a storage of 1048580 bytes .* larger than one GPU buffer may be on this device \(maxBufferSize 1048576 bytes\)/);
      const fits = memory.alloc('float32', 1 << 18); // exactly the limit: its size class is not rounded past it
      assert.equal((fits.buffer as unknown as GpuBuf).gpu.size, 1 << 20);
      fits.dispose();
    } finally {
      gpu.allocator.maxBufferBytes = before;
    }
  });

  const TRAIN_LIMIT = 320 * 1024;
  const cases: { name: string; optimizer: (m: Module) => Optimizer; clip?: number; paramAtol: number }[] = [
    { name: 'SGD with momentum', optimizer: (m) => new SGD(m.arena(), { lr: 0.05, momentum: 0.9 }), paramAtol: 1e-5 },
    { name: 'AdamW, gradients clipped to norm 0.5', optimizer: (m) => new AdamW(m.arena(), { lr: 0.001, weightDecay: 0.01 }), clip: 0.5, paramAtol: 1e-4 },
  ];
  for (const c of cases) {
    it(`gpt2-tiny with arenas 5× the binding limit trains 2 steps equal to the cpu: ${c.name}`, async (t) => {
      if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
      setBackend('js');
      const train = async (device: 'cpu' | 'webgpu'): Promise<{ losses: number[]; norms: number[]; params: Float32Array }> => {
        const model = createModel(defaultSpec('gpt2-tiny', [12], 50), 5);
        if (device === 'webgpu') model.to('webgpu');
        const opt = c.optimizer(model);
        const rng = new Rng(11);
        const losses: number[] = [];
        const norms: number[] = [];
        for (let s = 0; s < 2; s++) {
          const x = Tensor.from(Float32Array.from({ length: 24 }, () => rng.int(50)), [2, 12]);
          const labels = Int32Array.from({ length: 24 }, () => rng.int(50));
          model.zeroGrad();
          const loss = crossEntropy(model.forward(x), labels);
          backward(loss);
          if (c.clip) {
            const grads = model.arena().grads;
            const norm = Math.sqrt(await sumOfSquares(grads).read());
            norms.push(norm);
            if (c.clip / (norm + 1e-6) < 1) scaleInPlace(grads, c.clip / (norm + 1e-6));
          }
          opt.step();
          losses.push((await loss.read())[0]);
        }
        return { losses, norms, params: Float32Array.from(await model.arena().params.read()) };
      };
      const cpu = await train('cpu');
      const ranged = gpu.stream.rangedBindings;
      const run = await withBindingLimit(TRAIN_LIMIT, async () => {
        const out = await train('webgpu');
        assert.ok(out.params.length * 4 > 5 * TRAIN_LIMIT, `the arena (${out.params.length * 4} bytes) is 5× the limit`);
        return out;
      });
      assert.ok(gpu.stream.rangedBindings > ranged, 'kernels bound ranges of the arenas');
      assertClose(run.losses, cpu.losses, { rtol: 1e-4, atol: 1e-5, msg: 'losses' });
      if (c.clip) {
        assert.ok(cpu.norms.every((v) => v > c.clip!), 'the clip applied');
        assertClose(run.norms, cpu.norms, { rtol: 1e-4, msg: 'gradient norms' });
      }
      assertClose(run.params, cpu.params, { rtol: 1e-4, atol: c.paramAtol, msg: 'parameters after 2 steps' });
    });
  }
});

