import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CheckpointError } from '../../../src/nn/checkpoint.js';
import { initFromFile, loadSafetensors, loadSafetensorsModel, saveSafetensors } from '../../../src/nn/interchange/model_io.js';
import { readSafetensors, writeSafetensors } from '../../../src/nn/interchange/safetensors.js';
import { createModel, defaultSpec } from '../../../src/nn/models/index.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-st-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function rejects(fn: () => void, file: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof CheckpointError && e.message.startsWith(file) && pattern.test(e.message), String(pattern));
}

describe('safetensors', () => {
  const spec = defaultSpec('gpt2-tiny', [8], 30, { layers: 1, width: 16, heads: 2, context: 8 });

  it('round-trips a model: HF layout on disk (Conv1D [in, out], lm_head copy, 8-byte aligned header), same weights back', async () => {
    const file = join(dir, 'a.safetensors');
    const a = createModel(spec, 1);
    saveSafetensors(file, a, spec, { steps: 3 });
    const raw = readFileSync(file);
    assert.equal(Number(raw.readBigUInt64LE(0)) % 8, 0);
    const { tensors, metadata } = readSafetensors(file);
    assert.deepEqual(tensors.get('transformer.h.0.attn.c_attn.weight')!.shape, [16, 48]);
    assert.ok(tensors.has('lm_head.weight'));
    assert.deepEqual(JSON.parse(metadata.architecture), spec);
    assert.equal(metadata.steps, '3');
    const b = createModel(spec, 2);
    initFromFile(file, b, spec);
    assert.equal(await b.arena().checksum(), await a.arena().checksum());
  });

  it('loadSafetensorsModel rebuilds the model from the file alone (spec from __metadata__.architecture); a file without one is refused by name', async () => {
    const file = join(dir, 'whole.safetensors');
    const a = createModel(spec, 1);
    saveSafetensors(file, a, spec);
    const { model, spec: read } = loadSafetensorsModel(file);
    assert.deepEqual(read, spec);
    assert.equal(await model.arena().checksum(), await a.arena().checksum());
    const bare = join(dir, 'bare.safetensors');
    writeSafetensors(bare, [['w', { shape: [2], data: new Float32Array(2) }]]);
    rejects(() => loadSafetensorsModel(bare), bare, /no __metadata__\.architecture.*call loadSafetensors/);
    const odd = join(dir, 'odd.safetensors');
    writeSafetensors(odd, [['w', { shape: [2], data: new Float32Array(2) }]], { architecture: '{"type":"lstm"}' });
    rejects(() => loadSafetensorsModel(odd), odd, /type "lstm"; expected one of mlp, cnn, resnet, gpt2, bert/);
  });

  it('ResNet files carry running statistics and num_batches_tracked (I64)', () => {
    const rspec = defaultSpec('resnet18', [3, 8, 8], 3, { width: 4 });
    const file = join(dir, 'r.safetensors');
    saveSafetensors(file, createModel(rspec, 0), rspec);
    const t = readSafetensors(file).tensors;
    assert.equal(t.get('layer1.0.bn1.num_batches_tracked')!.dtype, 'I64');
    assert.deepEqual(t.get('layer3.0.downsample.1.running_var')!.shape, [16]);
  });

  it('malformed files are refused naming the file and the problem', () => {
    const good = join(dir, 'g.safetensors');
    saveSafetensors(good, createModel(spec, 1), spec);
    const raw = readFileSync(good);
    const bad = join(dir, 'bad.safetensors');
    const m = (): ReturnType<typeof createModel> => createModel(spec, 0);
    writeFileSync(bad, raw.subarray(0, 5));
    rejects(() => loadSafetensors(bad, m(), spec), bad, /shorter than the 8-byte header length/);
    writeFileSync(bad, raw.subarray(0, raw.length - 10));
    rejects(() => loadSafetensors(bad, m(), spec), bad, /past the .* data bytes in the file \(truncated\?\)/);
    const header = Buffer.from('{"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(bad, Buffer.concat([len, header, Buffer.alloc(8)]));
    rejects(() => readSafetensors(bad), bad, /tensor "x": data_offsets span 4 bytes, but F32 \[2\] needs 8/);
    len.writeBigUInt64LE(1000n);
    writeFileSync(bad, Buffer.concat([len, header]));
    rejects(() => readSafetensors(bad), bad, /header length 1000 exceeds/);
    len.writeBigUInt64LE(3n);
    writeFileSync(bad, Buffer.concat([len, Buffer.from('{x}')]));
    rejects(() => readSafetensors(bad), bad, /not valid JSON/);
  });

  it('a file of another model is refused naming the tensor: wrong shape, missing, unexpected', () => {
    const file = join(dir, 'w.safetensors');
    const wide = defaultSpec('gpt2-tiny', [8], 30, { layers: 1, width: 32, heads: 2, context: 8 });
    saveSafetensors(file, createModel(wide, 0), wide);
    rejects(() => loadSafetensors(file, createModel(spec, 0), spec), file, /tensor "transformer.wte.weight" has shape \[30, 32\], the model needs \[30, 16\]/);
    const deeper = { ...spec, layers: 2 };
    saveSafetensors(file, createModel(spec, 0), spec);
    rejects(() => loadSafetensors(file, createModel(deeper, 0), deeper), file, /missing 12 tensor\(s\) the model needs: transformer.h.1.ln_1.weight/);
    saveSafetensors(file, createModel(deeper, 0), deeper);
    rejects(() => loadSafetensors(file, createModel(spec, 0), spec), file, /12 tensor\(s\) this gpt2 model does not have: transformer.h.1/);
  });

  it('writes only what it declares (no stray bytes), so other readers agree on the layout', () => {
    const file = join(dir, 'i.safetensors');
    writeSafetensors(file, [['a', { shape: [2], data: Float32Array.from([1, 2]) }], ['n', { shape: [], int64: [5n] }]]);
    const { tensors } = readSafetensors(file);
    assert.deepEqual([...tensors.keys()], ['a', 'n']);
    assert.equal(tensors.get('n')!.bytes.readBigInt64LE(0), 5n);
    const raw = readFileSync(file);
    assert.equal(raw.length, 8 + Number(raw.readBigUInt64LE(0)) + 16);
  });
});
