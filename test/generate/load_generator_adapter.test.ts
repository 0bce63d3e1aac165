/** loadGenerator({ adapter }): a base Hugging Face folder plus a PEFT adapter folder gives the adapted model's logits. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadGenerator } from '../../src/generate/load_generator.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { applyLora, saveAdapter } from '../../src/nn/lora/index.js';
import { type ModelSpec, createModel } from '../../src/nn/models/index.js';
import type { Module } from '../../src/nn/module.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';

const root = mkdtempSync(join(tmpdir(), 'smol-generator-adapter-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SPEC: ModelSpec = { type: 'gpt2', vocabSize: 256, context: 32, layers: 1, width: 16, heads: 2, dropout: 0 };
const IDS = Tensor.from([72, 105, 33, 10, 7, 200], [1, 6]);
const logits = (m: Module): number[] => Array.from(m.eval().forward(IDS).values());

describe('loadGenerator with an adapter', () => {
  it('merges the PEFT folder into the base: the adapted logits; without it, the base\'s', async () => {
    const model = createModel(SPEC, 1);
    const base = join(root, 'base');
    saveFolder(base, model, SPEC);
    const plain = logits(model);
    applyLora(model, { rank: 2, alpha: 4, dropout: 0, targets: ['c_attn', 'c_fc'] });
    const rng = new Rng(2);
    for (const [, p] of model.namedTrainable()) p.storage.write(Float32Array.from(p.values() as Float32Array, () => 0.2 * rng.normal()));
    const adapted = logits(model);
    const adapter = join(root, 'adapter');
    await saveAdapter(adapter, model, SPEC, base);
    const close = (a: number[], b: number[]): boolean => a.every((v, i) => Math.abs(v - b[i]) < 1e-4);
    const g = await loadGenerator(base, { adapter });
    assert.ok(close(logits(g.model as unknown as Module), adapted), 'adapted logits');
    assert.ok(!close(adapted, plain), 'the adapter changes them');
    assert.ok(close(logits((await loadGenerator(base)).model as unknown as Module), plain));
    await assert.rejects(loadGenerator(base, { adapter: join(root, 'none') }), /is not a PEFT adapter folder \(no adapter_config\.json\)/);
  });
});
