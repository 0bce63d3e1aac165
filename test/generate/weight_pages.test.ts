/**
 * A model loaded for inference moves its float32 weights into one huge-page block
 * (src/generate/weight_pages.ts) where the backend advises huge pages (native, Linux): every
 * weight a view of one block, its values and the model's logits unchanged; elsewhere nothing moves.
 * And the native advice itself: the 2 MB-aligned span of a buffer, the values kept.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { describe, it } from '../helpers/per_backend.js';
import { holdWeightsInHugePages } from '../../src/generate/weight_pages.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { hostKernels } from '../../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend } from '../../src/tensor/backends/native.js';
import { backendFor } from '../../src/tensor/dispatch.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { FAMILIES, randomModel } from './families.js';

describe('holdWeightsInHugePages', () => {
  it('moves every float32 weight into one block where the backend advises huge pages, values and logits unchanged', () => {
    for (const [name, spec] of [FAMILIES[0], FAMILIES[2]]) {
      const model = randomModel(spec, 21);
      const ids = Tensor.from([3, 1, 4, 1, 5], [1, 5], 'int32');
      const before = noGrad(() => model.forward(ids)).values();
      const values = model.parameters().map((p) => p.values().slice());
      const storages = model.parameters().map((p) => p.storage);
      const advises = backendFor({ device: 'cpu', dtype: 'float32' }).adviseHugePages !== undefined;
      assert.equal(holdWeightsInHugePages(model), advises, name);
      model.parameters().forEach((p, i) => assert.deepEqual(p.values(), values[i], `${name}: ${p.name} kept its values`));
      const blocks = new Set(model.parameters().map((p) => (p.buffer as unknown as Float32Array).buffer));
      if (advises) {
        assert.equal(blocks.size, 1, `${name}: one block`);
        assert.ok(model.parameters().every((p, i) => p.storage !== storages[i]), `${name}: every weight rebound`);
      } else {
        assert.ok(model.parameters().every((p, i) => p.storage === storages[i]), `${name}: nothing moved`);
      }
      assert.deepEqual(noGrad(() => model.forward(ids)).values(), before, `${name}: the same logits`);
    }
  });
});

const native = loadNativeBackend().backend;
const thp = existsSync('/sys/kernel/mm/transparent_hugepage/enabled');

test('the native advice covers a buffer\'s 2 MB-aligned span and keeps its values', { skip: native && thp ? false : 'no native addon or no transparent huge pages here' }, () => {
  const k = hostKernels(native!);
  const x = Float32Array.from({ length: 3 << 20 }, (_, i) => i % 1009);
  const advised = k.adviseHugePages!(x);
  assert.equal(advised % (2 << 20), 0);
  assert.ok(advised >= (12 << 20) - (4 << 20) && advised <= 12 << 20, `12 MB buffer: ${advised} bytes advised`);
  assert.ok(x.every((v, i) => v === i % 1009), 'values kept');
  assert.equal(k.adviseHugePages!(new Float32Array(1 << 18)), 0, 'a 1 MB buffer holds no aligned 2 MB span');
});
