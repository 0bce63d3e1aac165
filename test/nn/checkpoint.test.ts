import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BatchNorm, CheckpointError, Linear, MODEL_FORMAT_VERSION, ReLU, Sequential, createModel, loadModel, readModelHeader, saveModel,
} from '../../src/nn/index.js';
import type { ModelSpec } from '../../src/nn/models/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';

const MLP: ModelSpec = { type: 'mlp', inputDim: 784, hidden: 32, out: 10 };
const CNN: ModelSpec = { type: 'cnn', inChannels: 1, inputSize: 28, out: 10 };

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'smolcluster-ckpt-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Saves an MLP (seed 1) and returns its file and bytes. */
async function savedMlp(name: string): Promise<{ file: string; bytes: Buffer }> {
  const file = join(dir, name);
  await saveModel(file, createModel(MLP, 1), MLP, { steps: 7 });
  return { file, bytes: readFileSync(file) };
}

/** Asserts fn throws a CheckpointError whose message names `file` and matches `re`. */
function throwsCheckpoint(fn: () => unknown, file: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    assert.equal(e.name, 'CheckpointError');
    assert.equal(e.file, file);
    assert.ok(e.message.includes(file), `message does not name the file: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

/** A small model with batch-norm buffers. */
function bnModel(seed: number): Sequential {
  const rng = new Rng(seed);
  return new Sequential(new Linear(5, 4, rng), new BatchNorm(4), new ReLU(), new Linear(4, 2, rng));
}

describe('model files (checkpoint.ts)', () => {
  it('save → load round-trips the parameter arena bit for bit', async () => {
    const file = join(dir, 'mlp.smol');
    const src = createModel(MLP, 1);
    // Include values whose bits a lossy path would lose: -0, a subnormal, the extremes.
    const a = src.arena().params.readSync();
    a[0] = -0;
    a[1] = 1e-45;
    a[2] = 3.4028234663852886e38;
    a[3] = -1.1754943508222875e-38;
    await saveModel(file, src, MLP);
    const dst = createModel(MLP, 2);
    assert.notEqual(await dst.arena().checksum(), await src.arena().checksum());
    const header = loadModel(file, dst, MLP);
    assert.equal(header.version, MODEL_FORMAT_VERSION);
    const bits = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);
    assert.deepEqual(bits(dst.arena().params.readSync()), bits(src.arena().params.readSync()));
    assert.equal(await dst.arena().checksum(), await src.arena().checksum());
    // The model's parameter tensors still view the arena after loading.
    const [, w] = dst.namedParameters()[0];
    assert.equal(w.values().buffer, dst.arena().params.readSync().buffer);
    assert.ok(Object.is(w.values()[0], -0));
  });

  it('round-trips batch-norm buffers after the parameters', async () => {
    const file = join(dir, 'bn.smol');
    const src = bnModel(3);
    src.forward(Tensor.randn([16, 5], new Rng(4), 'float32', 2)); // moves the running statistics
    const bn = src.layers[1] as BatchNorm;
    assert.ok(bn.runningMean.readSync().some((v) => v !== 0));
    await saveModel(file, src, { type: 'bn-test' });
    const dst = bnModel(9);
    loadModel(file, dst, { type: 'bn-test' });
    assert.deepEqual(dst.arena().params.readSync(), src.arena().params.readSync());
    const dbn = dst.layers[1] as BatchNorm;
    assert.deepEqual(dbn.runningMean.readSync(), bn.runningMean.readSync());
    assert.deepEqual(dbn.runningVar.readSync(), bn.runningVar.readSync());
    const { header } = readModelHeader(file);
    assert.deepEqual(header.buffers, [
      { name: '1.running_mean', shape: [4], offset: src.arena().size },
      { name: '1.running_var', shape: [4], offset: src.arena().size + 4 },
    ]);
  });

  it('the header records format, version, dtype, architecture, tensors and meta; data is 4-byte aligned', async () => {
    const { file, bytes } = await savedMlp('header.smol');
    assert.equal(bytes.subarray(0, 8).toString('latin1'), 'SMOLMDL\0');
    const hlen = bytes.readUInt32LE(8);
    assert.equal((12 + hlen) % 4, 0, 'data must start 4-byte aligned');
    const { header, dataStart } = readModelHeader(file);
    assert.equal(dataStart, 12 + hlen);
    assert.equal(header.format, 'smolcluster-model');
    assert.equal(header.version, 1);
    assert.equal(header.dtype, 'float32');
    assert.deepEqual(header.architecture, MLP);
    assert.deepEqual(header.meta, { steps: 7 });
    assert.deepEqual(header.params, [
      { name: '1.weight', shape: [32, 784], offset: 0 },
      { name: '1.bias', shape: [32], offset: 25088 },
      { name: '3.weight', shape: [10, 32], offset: 25120 },
      { name: '3.bias', shape: [10], offset: 25440 },
    ]);
    assert.deepEqual(header.buffers, []);
    assert.equal(bytes.length, 12 + hlen + 25450 * 4);
    // The data section is the arena, raw little-endian float32.
    const model = createModel(MLP, 1);
    assert.equal(bytes.readFloatLE(dataStart), model.arena().params.readSync()[0]);
    assert.equal(bytes.readFloatLE(dataStart + 25449 * 4), model.arena().params.readSync()[25449]);
  });

  it('loading into another architecture fails naming the file and both architectures, and changes nothing', async () => {
    const { file } = await savedMlp('arch.smol');
    const cnn = createModel(CNN, 0);
    const before = await cnn.arena().checksum();
    throwsCheckpoint(() => loadModel(file, cnn, CNN), file, /holds architecture .*"mlp".*but the model is .*"cnn"/);
    assert.equal(await cnn.arena().checksum(), before);
    const wide: ModelSpec = { type: 'mlp', inputDim: 784, hidden: 64, out: 10 };
    throwsCheckpoint(() => loadModel(file, createModel(wide, 0), wide), file, /"hidden":32.*"hidden":64/);
  });

  it('a file whose tensors differ from the model is refused even under the same architecture label', async () => {
    const { file } = await savedMlp('layout.smol');
    const other = createModel({ type: 'mlp', inputDim: 784, hidden: 16, out: 10 }, 0);
    throwsCheckpoint(() => loadModel(file, other, MLP), file, /parameter names or shapes differ/);
  });

  it('a truncated file is refused (data cut short, or header cut short)', async () => {
    const { bytes } = await savedMlp('full.smol');
    const cutData = join(dir, 'cut-data.smol');
    writeFileSync(cutData, bytes.subarray(0, bytes.length - 10));
    const model = createModel(MLP, 5);
    const before = await model.arena().checksum();
    throwsCheckpoint(() => loadModel(cutData, model, MLP), cutData, /truncated or oversized: expected 101800 data bytes, found 101790/);
    assert.equal(await model.arena().checksum(), before, 'a failed load must not modify the model');

    const cutHeader = join(dir, 'cut-header.smol');
    writeFileSync(cutHeader, bytes.subarray(0, 40));
    throwsCheckpoint(() => loadModel(cutHeader, model, MLP), cutHeader, /truncated: header declares \d+ bytes, file has 28/);

    const tiny = join(dir, 'tiny.smol');
    writeFileSync(tiny, bytes.subarray(0, 6));
    throwsCheckpoint(() => readModelHeader(tiny), tiny, /bad magic/);

    const longer = join(dir, 'longer.smol');
    writeFileSync(longer, Buffer.concat([bytes, Buffer.alloc(8)]));
    throwsCheckpoint(() => loadModel(longer, model, MLP), longer, /oversized/);
  });

  it('bad magic, unknown format, wrong version and corrupted JSON are refused by name', async () => {
    const { bytes } = await savedMlp('ok.smol');
    const model = createModel(MLP, 0);

    const magic = join(dir, 'magic.smol');
    const m = Buffer.from(bytes);
    m.write('PK', 0, 'latin1');
    writeFileSync(magic, m);
    throwsCheckpoint(() => loadModel(magic, model, MLP), magic, /not a smolcluster model file \(bad magic\)/);

    const version = join(dir, 'version.smol');
    writeFileSync(version, Buffer.from(bytes.toString('latin1').replace('"version":1', '"version":7'), 'latin1'));
    throwsCheckpoint(() => loadModel(version, model, MLP), version, /format version 7 is not supported \(this build reads version 1\)/);

    const format = join(dir, 'format.smol');
    writeFileSync(format, Buffer.from(bytes.toString('latin1').replace('smolcluster-model', 'smolcluster-other'), 'latin1'));
    throwsCheckpoint(() => loadModel(format, model, MLP), format, /unknown format "smolcluster-other"/);

    const json = join(dir, 'json.smol');
    const j = Buffer.from(bytes);
    j[12] = '#'.charCodeAt(0); // the header's opening brace
    writeFileSync(json, j);
    throwsCheckpoint(() => loadModel(json, model, MLP), json, /header is not valid JSON/);

    // Valid JSON that is not an object (e.g. a zeroed header) must be refused too, not crash.
    const nul = join(dir, 'null.smol');
    const body = Buffer.from('null');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(body.length);
    writeFileSync(nul, Buffer.concat([Buffer.from('SMOLMDL\0', 'latin1'), len, body]));
    throwsCheckpoint(() => loadModel(nul, model, MLP), nul, /header/);
  });

  it('a missing file is a CheckpointError naming it', () => {
    const missing = join(dir, 'nope', 'missing.smol');
    throwsCheckpoint(() => loadModel(missing, createModel(MLP, 0), MLP), missing, /cannot read/);
  });

  it('writes atomically: no temporary file is left, and an existing file is replaced whole', async () => {
    const sub = join(dir, 'atomic');
    mkdirSync(sub);
    const file = join(sub, 'model.smol');
    writeFileSync(file, 'old contents');
    await saveModel(file, createModel(MLP, 1), MLP);
    await saveModel(file, createModel(MLP, 2), MLP);
    assert.deepEqual(readdirSync(sub), ['model.smol']);
    const loaded = createModel(MLP, 0);
    loadModel(file, loaded, MLP);
    assert.equal(await loaded.arena().checksum(), await createModel(MLP, 2).arena().checksum());
  });

  it('a failed write leaves no temporary file and names the target', async () => {
    const sub = join(dir, 'failed');
    mkdirSync(sub);
    const target = join(sub, 'is-a-dir');
    mkdirSync(target); // renaming a file over a non-empty... directory fails
    writeFileSync(join(target, 'keep'), 'x');
    await assert.rejects(() => saveModel(target, createModel(MLP, 1), MLP), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.ok(e.message.includes(target), `message does not name the file: ${e.message}`);
      return true;
    });
    assert.deepEqual(readdirSync(sub), ['is-a-dir']);
  });
});
