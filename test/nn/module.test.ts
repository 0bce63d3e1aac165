import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchNorm, Dropout, Linear, ReLU, Sequential, createModel, defaultSpec } from '../../src/nn/index.js';
import { Module } from '../../src/nn/module.js';
import { backward } from '../../src/tensor/autograd.js';
import { crossEntropy } from '../../src/tensor/ops/loss.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { kernelsFor } from '../../src/tensor/dispatch.js';
import { withComputePrecision } from '../../src/tensor/precision.js';
import { Rng } from '../../src/util/rng.js';

const MLP = { type: 'mlp', inputDim: 784, hidden: 128, out: 10 } as const;
const CNN = { type: 'cnn', inChannels: 1, inputSize: 28, out: 10 } as const;

function randomBatch(n: number, shape: number[], classes: number, seed: number): { x: Tensor; y: Int32Array } {
  const rng = new Rng(seed);
  const x = Tensor.randn([n, ...shape], rng);
  const y = Int32Array.from({ length: n }, () => rng.int(classes));
  return { x, y };
}

describe('Module', () => {
  it('mlp 784-128-10 has 101770 parameters with stable dotted names', () => {
    const m = createModel(MLP, 0);
    assert.equal(m.numParameters(), 784 * 128 + 128 + 128 * 10 + 10);
    assert.equal(m.numParameters(), 101770);
    // Sequential children are "0", "1", ... as in torch; 0 is the Flatten, 2 the ReLU.
    assert.deepEqual(
      m.namedParameters().map(([n, p]) => [n, [...p.shape]]),
      [['1.weight', [128, 784]], ['1.bias', [128]], ['3.weight', [10, 128]], ['3.bias', [10]]],
    );
    assert.deepEqual(createModel(MLP, 5).namedParameters().map(([n]) => n), m.namedParameters().map(([n]) => n));
  });

  it('cnn parameter count equals torch\'s for the same layers', () => {
    const m = createModel(CNN, 0);
    const conv1 = 32 * 1 * 9 + 32;
    const conv2 = 64 * 32 * 9 + 64;
    const fc1 = 3136 * 128 + 128;
    const fc2 = 128 * 10 + 10;
    assert.equal(m.numParameters(), conv1 + conv2 + fc1 + fc2);
    assert.equal(m.numParameters(), 421642);
    assert.deepEqual(
      m.namedParameters().map(([n, p]) => [n, [...p.shape]]),
      [
        ['0.weight', [32, 1, 3, 3]], ['0.bias', [32]],
        ['3.weight', [64, 32, 3, 3]], ['3.bias', [64]],
        ['7.weight', [128, 3136]], ['7.bias', [128]],
        ['9.weight', [10, 128]], ['9.bias', [10]],
      ],
    );
    assert.equal(m.arena().size, 421642);
  });

  it('firstParameter() is parameters()[0] (a model with nested layers; a module with none: undefined)', () => {
    for (const spec of [MLP, defaultSpec('gpt2-tiny', [64], 256), defaultSpec('llama-tiny', [64], 256)]) {
      const model = createModel(spec, 1);
      assert.equal(model.firstParameter(), model.parameters()[0], spec.type);
    }
    assert.equal(new Sequential(new ReLU()).firstParameter(), undefined);
  });

  it('parameters are views into ONE arena, contiguous in name order', () => {
    const m = createModel(MLP, 1);
    const arena = m.arena();
    assert.equal(m.arena(), arena, 'arena() is built once');
    let offset = 0;
    for (const [name, p] of m.namedParameters()) {
      assert.equal(p.values().buffer, arena.params.readSync().buffer, `${name} data is not in the arena`);
      assert.equal(p.values().byteOffset, arena.params.readSync().byteOffset + offset * 4, `${name} is not at offset ${offset}`);
      assert.equal(p.gradValues()!.buffer, arena.grads.readSync().buffer, `${name} grad is not in the gradient arena`);
      offset += p.size;
    }
    assert.equal(offset, arena.size);
    const [, w1] = m.namedParameters()[0];
    const [, b2] = m.namedParameters()[3];
    arena.params.readSync()[0] = 123.5;
    assert.equal(w1.values()[0], 123.5, 'arena write not visible in the parameter');
    b2.values()[9] = -7.25;
    assert.equal(arena.params.readSync()[arena.size - 1], -7.25, 'parameter write not visible in the arena');
  });

  it('packing keeps the initial values', () => {
    const before = createModel(MLP, 3).parameters().map((p) => Float32Array.from(p.values()));
    const m = createModel(MLP, 3);
    const arena = m.arena();
    let offset = 0;
    for (const b of before) {
      assert.deepEqual(arena.params.readSync().subarray(offset, offset + b.length), b);
      offset += b.length;
    }
  });

  it('backward writes gradients into the gradient arena; zeroGrad zeroes all; grads accumulate', () => {
    const m = createModel(MLP, 2);
    const arena = m.arena();
    const { x, y } = randomBatch(8, [1, 28, 28], 10, 9);
    backward(crossEntropy(m.forward(x), y));
    for (const e of arena.entries) {
      const g = arena.grads.readSync().subarray(e.offset, e.offset + e.size);
      assert.ok(g.some((v) => v !== 0), `no gradient reached ${e.name}`);
      assert.ok(g.every(Number.isFinite), `non-finite gradient in ${e.name}`);
    }
    // Parameters still see the arena (backward did not replace their grad buffers).
    for (const p of m.parameters()) assert.equal(p.gradValues()!.buffer, arena.grads.readSync().buffer);
    const first = Float32Array.from(arena.grads.readSync());
    backward(crossEntropy(m.forward(x), y));
    for (let i = 0; i < first.length; i += 997) {
      assert.ok(Math.abs(arena.grads.readSync()[i] - 2 * first[i]) <= 1e-6 + 1e-5 * Math.abs(first[i]), `gradient ${i} did not accumulate`);
    }
    m.zeroGrad();
    assert.ok(arena.grads.readSync().every((v) => v === 0), 'zeroGrad left non-zero gradients');
    backward(crossEntropy(m.forward(x), y));
    assert.deepEqual(arena.grads.readSync(), first, 'after zeroGrad the same batch gives the same gradient');
  });

  it('bf16: after zeroGrad the weight-gradient products write the zeroed gradients whole (beta 0), then accumulate', () => {
    const m = createModel(MLP, 2);
    const arena = m.arena();
    const { x, y } = randomBatch(8, [1, 28, 28], 10, 9);
    // The bf16 GEMM is the 'bfloat16' entry of gemm (bf16 as a dtype).
    const k = kernelsFor({ device: 'cpu', dtype: 'bfloat16' }) as unknown as Record<string, (...a: unknown[]) => void>;
    const original = k.gemm;
    const weightBetas: number[] = [];
    k.gemm = (...a: unknown[]) => {
      if (a[0] === true) weightBetas.push(a[10] as number); // transA: a weight gradient gyᵀ·x
      return original.apply(k, a);
    };
    try {
      withComputePrecision('bf16', () => {
        backward(crossEntropy(m.forward(x), y)); // packed, never zeroed: added into the zeros
        const first = Float32Array.from(arena.grads.readSync());
        assert.deepEqual(weightBetas.splice(0), [1, 1]);
        m.zeroGrad();
        backward(crossEntropy(m.forward(x), y));
        assert.deepEqual(weightBetas.splice(0), [0, 0], 'the zeroed weight gradients are overwritten');
        // Equal values (a sign of zero may differ: 0 + (-0) is +0).
        assert.ok(arena.grads.readSync().every((v, i) => v === first[i]), 'overwriting gives what adding into zeros gave');
        backward(crossEntropy(m.forward(x), y)); // a second pass (gradient accumulation) adds
        assert.deepEqual(weightBetas.splice(0), [1, 1]);
        const twice = arena.grads.readSync();
        for (let i = 0; i < first.length; i += 997) {
          assert.ok(Math.abs(twice[i] - 2 * first[i]) <= 1e-6 + 1e-5 * Math.abs(first[i]), `gradient ${i} did not accumulate`);
        }
      });
    } finally {
      k.gemm = original;
    }
  });

  it('a gradient computed before the arena is built is kept when it is packed', () => {
    const m = createModel({ type: 'mlp', inputDim: 784, hidden: 16, out: 10 }, 2);
    const { x, y } = randomBatch(4, [1, 28, 28], 10, 3);
    backward(crossEntropy(m.forward(x), y)); // no arena yet: grads in per-tensor buffers
    const grads = m.parameters().map((p) => Float32Array.from(p.gradValues()!));
    assert.ok(grads.every((g) => g.some((v) => v !== 0)));
    const arena = m.arena();
    let offset = 0;
    for (const g of grads) {
      assert.deepEqual(arena.grads.readSync().subarray(offset, offset + g.length), g);
      offset += g.length;
    }
  });

  it('checksum: same seed equal, different seed different, one flipped bit changes it', async () => {
    const a = createModel(MLP, 11).arena();
    const b = createModel(MLP, 11).arena();
    const c = createModel(MLP, 12).arena();
    assert.equal(await a.checksum(), await b.checksum());
    assert.notEqual(await a.checksum(), await c.checksum());
    const sum = await a.checksum();
    const words = new Uint32Array(a.params.readSync().buffer, a.params.readSync().byteOffset, a.size);
    words[50000] ^= 1; // lowest mantissa bit of one weight
    assert.notEqual(await a.checksum(), sum);
    words[50000] ^= 1;
    assert.equal(await a.checksum(), sum);
  });

  it('signature: equal for the same architecture whatever the seed, different otherwise', () => {
    const sig = createModel(MLP, 0).arena().signature();
    assert.equal(sig, '1.weight:128x784,1.bias:128,3.weight:10x128,3.bias:10');
    assert.equal(createModel(MLP, 99).arena().signature(), sig);
    assert.notEqual(createModel({ ...MLP, hidden: 64 }, 0).arena().signature(), sig);
    assert.notEqual(createModel(CNN, 0).arena().signature(), sig);
  });

  it('train()/eval() propagate to every descendant', () => {
    const rng = new Rng(1);
    const inner = new Sequential(new Linear(4, 4, rng), new Dropout(0.5, rng));
    const m = new Sequential(new Linear(3, 4, rng), new ReLU(), inner, new BatchNorm(4));
    const all = (root: Module): Module[] => [root, ...((root as Sequential).layers ?? []).flatMap(all)];
    assert.equal(all(m).length, 7);
    assert.ok(all(m).every((x) => x.training), 'modules start in training mode');
    assert.equal(m.eval(), m, 'eval() returns the module');
    assert.ok(all(m).every((x) => !x.training), 'eval() did not reach every module');
    m.train();
    assert.ok(all(m).every((x) => x.training), 'train() did not reach every module');
    m.train(false);
    assert.ok(all(m).every((x) => !x.training), 'train(false) did not reach every module');
  });

  it('dropout is active in training mode and the identity in eval mode', () => {
    const d = new Dropout(0.5, new Rng(3));
    const x = Tensor.full([1000], 1);
    const yTrain = d.forward(x).values();
    assert.ok(yTrain.some((v) => v === 0) && yTrain.some((v) => v === 2), 'training dropout should zero some and scale the rest by 2');
    d.eval();
    assert.deepEqual(d.forward(x).values(), x.values());
  });

  it('BatchNorm: buffers listed with dotted names, parameters in the arena, running stats updated in training only', () => {
    const rng = new Rng(4);
    const m = new Sequential(new Linear(3, 4, rng), new BatchNorm(4));
    assert.deepEqual(m.namedParameters().map(([n]) => n), ['0.weight', '0.bias', '1.weight', '1.bias']);
    const buffers = m.namedBuffers();
    assert.deepEqual(buffers.map(([n]) => n), ['1.running_mean', '1.running_var']);
    assert.deepEqual(Array.from(buffers[0][1]), [0, 0, 0, 0]);
    assert.deepEqual(Array.from(buffers[1][1]), [1, 1, 1, 1]);
    const bn = m.layers[1] as BatchNorm;
    assert.equal(buffers[0][1], bn.runningMean.readSync(), 'namedBuffers returns the live buffer, not a copy');
    assert.equal(m.numParameters(), 3 * 4 + 4 + 4 + 4);
    const x = Tensor.randn([16, 3], new Rng(5), 'float32', 3);
    m.forward(x);
    assert.ok(bn.runningMean.readSync().some((v) => v !== 0), 'running mean not updated in training mode');
    const mean = Float32Array.from(bn.runningMean.readSync());
    const variance = Float32Array.from(bn.runningVar.readSync());
    m.eval();
    m.forward(x);
    assert.deepEqual(bn.runningMean.readSync(), mean, 'running mean changed in eval mode');
    assert.deepEqual(bn.runningVar.readSync(), variance, 'running var changed in eval mode');
    // Parameter-only models list no buffers.
    assert.deepEqual(createModel(MLP, 0).namedBuffers(), []);
  });
});
