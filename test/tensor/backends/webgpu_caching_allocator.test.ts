/**
 * The webgpu caching allocator (caching_allocator.ts): freed buffers come back from their size
 * class's free list, zeroed where a zeroed storage was asked for; the cap on cached bytes evicts;
 * emptyCache gives the cache back; kernels' scratch buffers and autograd's dead gradients return
 * to it; and a storage the garbage collector dropped (with every view) returns too, while a live
 * view keeps its buffer out of the cache (checked in a child process run with --expose-gc).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Tensor, backward, crossEntropy, deviceMemory, linear, relu } from '../../../src/tensor/index.js';
import { closeWebGpu, sizeClass, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import type { GpuBuf } from '../../../src/tensor/backends/webgpu/stream.js';
import { WEBGPU_CHILD_ENV, loadWebGpuForTests } from '../../helpers/webgpu.js';
import { Rng, labels, randn } from '../../helpers/tensors.js';

const INDEX = new URL('../../../src/tensor/backends/webgpu/index.js', import.meta.url).href;
const STORAGE = new URL('../../../src/tensor/storage.js', import.meta.url).href;

describe('webgpu caching allocator', () => {
  let load: WebGpuLoad;
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
  });
  after(() => closeWebGpu());

  it('size classes: 256-byte steps up to 1 KiB, then four per power of two, never more than 25 % over', () => {
    assert.deepEqual([4, 256, 257, 1024, 1025, 1280, 1281, 4096, 5000].map(sizeClass), [256, 256, 512, 1024, 1280, 1280, 1536, 4096, 5120]);
    for (let b = 1025; b < 1 << 22; b = Math.ceil(b * 1.37)) {
      const c = sizeClass(b);
      assert.ok(c >= b && c <= 1.25 * b && c % 16 === 0, `${b} bytes → ${c}`);
    }
  });

  it('a disposed storage is reused by the next request of its size class, zeroed', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const memory = deviceMemory('webgpu');
    const a = memory.fromHost(Float32Array.from({ length: 1000 }, (_, i) => i + 1));
    const gpu = (a.buffer as unknown as GpuBuf).gpu;
    const before = load.backend.allocator.stats();
    a.dispose();
    a.dispose(); // a second free does nothing
    const freed = load.backend.allocator.stats();
    assert.equal(freed.cachedBytes, before.cachedBytes + sizeClass(4000));
    assert.equal(freed.allocatedBytes, before.allocatedBytes - sizeClass(4000));
    const b = memory.alloc('float32', 990); // same class (4,096 bytes)
    assert.equal((b.buffer as unknown as GpuBuf).gpu, gpu, 'the same GPU buffer');
    const after = load.backend.allocator.stats();
    assert.equal(after.hits, freed.hits + 1);
    assert.equal(after.misses, freed.misses);
    assert.equal(after.reservedBytes, freed.reservedBytes, 'nothing created');
    assert.deepEqual([...(await b.read())], new Array(990).fill(0), 'zeroed although reused');
    b.dispose();
  });

  it('caps the cached bytes (a free into a full cache destroys) and emptyCache releases them all', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const allocator = load.backend.allocator;
    const cap = allocator.maxCachedBytes;
    try {
      allocator.emptyCache();
      allocator.maxCachedBytes = 2 * 8192;
      const memory = deviceMemory('webgpu');
      const storages = [1, 2, 3].map(() => memory.alloc('float32', 2048)); // 8 KiB each
      const before = allocator.stats();
      for (const s of storages) s.dispose();
      const full = allocator.stats();
      assert.equal(full.cachedBytes, 2 * 8192, 'two of the three fit under the cap');
      assert.equal(full.evictions, before.evictions + 1);
      assert.equal(full.reservedBytes, before.reservedBytes - 8192, 'the third went back to the driver');
      allocator.emptyCache();
      const empty = allocator.stats();
      assert.equal(empty.cachedBytes, 0);
      assert.equal(empty.reservedBytes, empty.allocatedBytes);
      await load.backend.stream.finish(); // the destroys are submitted without error
    } finally {
      allocator.maxCachedBytes = cap;
    }
  });

  it('a training step gives back its intermediate gradients, the probabilities and its scratch: the next step reuses them', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const r = new Rng(5);
    const onGpu = (x: Tensor): Tensor => Tensor.from(x.values(), x.shape, 'float32', 'webgpu');
    const [w1, b1, w2, b2] = [randn([16, 12], r, 'float32', 0.3), randn([16], r, 'float32'), randn([4, 16], r, 'float32', 0.3), randn([4], r, 'float32')].map(onGpu);
    for (const p of [w1, b1, w2, b2]) p.requiresGrad = true;
    const x = onGpu(randn([8, 12], r, 'float32'));
    const y = labels([0, 1, 2, 3, 0, 1, 2, 3]);
    const step = async (): Promise<number> => {
      const loss = crossEntropy(linear(relu(linear(x, w1, b1)), w2, b2), y);
      backward(loss);
      return (await loss.read())[0];
    };
    await step();
    const s1 = load.backend.allocator.stats();
    await step();
    const s2 = load.backend.allocator.stats();
    // Given back during step 1: the gradients of h = linear(x), relu(h) and the logits, the
    // cross-entropy's probabilities and its per-row losses (scratch). The activations die with the
    // graph, when the collector takes them (the last test), so step 2 still creates those.
    const hits = s2.hits - s1.hits;
    assert.ok(hits >= 5, `the second step reused ${hits} buffers (created ${s2.misses - s1.misses})`);
  });

  it('the garbage collector returns a dropped storage, but not while a view of it lives', () => {
    const script = `
      const { loadWebGpuBackend, closeWebGpu } = await import(${JSON.stringify(INDEX)});
      const { deviceMemory } = await import(${JSON.stringify(STORAGE)});
      const load = await loadWebGpuBackend();
      if (!load.backend) { console.log(JSON.stringify({ skip: load.reason })); process.exit(0); }
      const a = load.backend.allocator;
      const settle = async () => { for (let i = 0; i < 20; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 5)); } };
      let view = (() => deviceMemory('webgpu').alloc('float32', 5000).view(10, 20))();
      await settle();
      const withView = a.stats();
      view = null;
      await settle();
      const dropped = a.stats();
      console.log(JSON.stringify({ withView, dropped }));
      closeWebGpu();
      process.exit(0);`;
    const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
      env: { ...process.env, ...WEBGPU_CHILD_ENV }, encoding: 'utf8', timeout: 60_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!);
    if (out.skip) {
      assert.notEqual(process.env.CI, 'true', `CI=true but webgpu is unavailable: ${out.skip}`);
      return;
    }
    assert.equal(out.withView.collected, 0, 'a live view keeps the buffer');
    assert.equal(out.withView.allocatedBytes, sizeClass(20000));
    assert.equal(out.dropped.collected, 1);
    assert.equal(out.dropped.allocatedBytes, 0);
    assert.equal(out.dropped.cachedBytes, sizeClass(20000));
  });
});
