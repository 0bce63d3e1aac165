import assert from 'node:assert/strict';
import { mkdtempSync, openSync, closeSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CheckpointError } from '../../../src/nn/checkpoint.js';
import { openInitRanges } from '../../../src/nn/interchange/init_ranges.js';
import { saveSafetensors } from '../../../src/nn/interchange/model_io.js';
import { readSafetensorsHeader } from '../../../src/nn/interchange/safetensors.js';
import { createModel, type Gpt2Spec } from '../../../src/nn/models/index.js';
import { buildDeferred } from '../../../src/tensor/deferred_init.js';

const SPEC: Gpt2Spec = { type: 'gpt2', vocabSize: 23, context: 8, layers: 2, width: 12, heads: 2, dropout: 0 };

describe('--init read by ranges (a ZeRO shard\'s)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'init-ranges-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('any range of any parameter (HF\'s transposed Conv1D weights included) has the saved values, for a model that holds none', () => {
    const saved = createModel(SPEC, 5);
    const file = join(dir, 'gpt.safetensors');
    saveSafetensors(file, saved, SPEC);
    const empty = buildDeferred(() => createModel(SPEC, 6));
    const ranges = openInitRanges(file, empty, SPEC);
    try {
      for (const [name, p] of saved.namedParameters()) {
        const values = p.values() as Float32Array;
        const from = Math.floor(p.size / 4);
        const to = p.size - Math.floor(p.size / 5);
        assert.deepEqual(ranges.read(name, p.shape, 0, p.size), values, name);
        assert.deepEqual(ranges.read(name, p.shape, from, to), values.subarray(from, to), `${name} [${from}, ${to})`);
      }
    } finally {
      ranges.close();
    }
  });

  it('reads only the range asked for: bytes elsewhere in the tensor do not reach it', () => {
    const saved = createModel(SPEC, 5);
    const file = join(dir, 'scribbled.safetensors');
    saveSafetensors(file, saved, SPEC);
    // Scribble over the first half of the token embedding's bytes in the file.
    const fd = openSync(file, 'r+');
    const { entries, dataStart } = readSafetensorsHeader(file, fd);
    const wte = entries.get('transformer.wte.weight')!;
    const half = (wte.end - wte.begin) / 8;
    writeSync(fd, Buffer.alloc(4 * half, 0xff), 0, 4 * half, dataStart + wte.begin);
    closeSync(fd);
    const ranges = openInitRanges(file, buildDeferred(() => createModel(SPEC, 6)), SPEC);
    const values = saved.namedParameters()[0][1].values() as Float32Array;
    assert.deepEqual(ranges.read('transformer.wte.weight', [SPEC.vocabSize, SPEC.width], half, values.length), values.subarray(half));
    assert.ok(Number.isNaN(ranges.read('transformer.wte.weight', [SPEC.vocabSize, SPEC.width], 0, 1)[0]), 'the scribbled bytes are what the file holds');
    ranges.close();
  });

  it('a file of another shape is refused by name when it is opened', () => {
    const file = join(dir, 'wide.safetensors');
    saveSafetensors(file, createModel({ ...SPEC, width: 16 }, 5), { ...SPEC, width: 16 });
    assert.throws(() => openInitRanges(file, buildDeferred(() => createModel(SPEC, 6)), SPEC), (e: unknown) => e instanceof CheckpointError && /tensor "transformer.wte.weight" has shape \[23, 16\], the model needs \[23, 12\]/.test(e.message));
  });
});
