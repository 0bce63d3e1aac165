/**
 * Several PEFT adapters over one base, unmerged (serve --lora-modules): a batch whose rows run
 * different adapters (and the base) gives each row the logits of that adapter merged into the base
 * alone (mergeAdapterInto), within float32 rounding: adapters of other ranks, alphas and targets,
 * rows in any order. What does not fit the base is refused by module or name.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { withAdapterRows, rangesOf } from '../../../src/nn/lora/adapter_rows.js';
import { AdaptersLinear } from '../../../src/nn/lora/adapters_linear.js';
import { applyLora, mergeAdapterInto, saveAdapter } from '../../../src/nn/lora/index.js';
import { loadServedAdapters } from '../../../src/nn/lora/served_adapters.js';
import { type LlamaSpec, createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { tempDir } from '../../helpers/cluster.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 96, context: 32, layers: 2, width: 32, intermediate: 64, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: true, qkNorm: false, dropout: 0,
};
const SEQ = 7;
const dir = tempDir('served-adapters');
after(() => rmSync(dir, { recursive: true, force: true }));

/** An adapter of rank r on `targets`, its B off zero so it changes the logits. */
async function writeAdapter(name: string, spec: LlamaSpec, rank: number, alpha: number, targets: string[], seed: number): Promise<string> {
  const model = createModel(spec, 1);
  applyLora(model, { rank, alpha, dropout: 0, targets, seed });
  const rng = new Rng(seed);
  for (const [n, p] of model.namedTrainable()) if (n.endsWith('lora_B.weight')) p.storage.write(Float32Array.from(p.values() as Float32Array, () => 0.3 * rng.normal()));
  const path = join(dir, name);
  await saveAdapter(path, model, spec);
  return path;
}

const base = (): Module => createModel(SPEC, 3).eval();
const ids = (row: number): number[] => Array.from({ length: SEQ }, (_, i) => (row * 31 + i * 7 + 5) % SPEC.vocabSize);

/** Logits of rows [rows, SEQ], each row's adapter as `adapters` says. */
function batchLogits(model: Module, adapters: (string | null)[]): Float32Array {
  const input = Tensor.from(adapters.flatMap((_, r) => ids(r)), [adapters.length, SEQ], 'int32');
  return noGrad(() => withAdapterRows(adapters, () => Float32Array.from(model.forward(input).values() as Float32Array)));
}

describe('adapters served by name over one base', () => {
  it('a batch mixing adapters and the base: each row the logits of its adapter merged into the base, alone', async () => {
    const a = await writeAdapter('a', SPEC, 4, 8, ['q_proj', 'v_proj', 'down_proj'], 11);
    const b = await writeAdapter('b', SPEC, 2, 16, ['k_proj', 'o_proj', 'up_proj', 'q_proj'], 12);
    const served = base();
    loadServedAdapters(served, [{ name: 'a', dir: a }, { name: 'b', dir: b }]);
    const layer = new Map(served.namedModules()).get('model.layers.0.self_attn.q_proj');
    assert.ok(layer instanceof AdaptersLinear && layer.adapters.join() === 'a,b', 'q_proj holds both adapters');
    const merged = new Map<string | null, Module>([[null, base()]]);
    for (const [name, path] of [['a', a], ['b', b]] as const) {
      const m = base();
      await mergeAdapterInto(path, m);
      merged.set(name, m);
    }
    const V = SPEC.vocabSize;
    for (const rows of [['a', null, 'b', 'a', null], ['b', 'b', 'a'], ['a', 'a'], [null, 'b']] as (string | null)[][]) {
      const got = batchLogits(served, rows);
      rows.forEach((adapter, r) => {
        const alone = noGrad(() => merged.get(adapter)!.forward(Tensor.from(ids(r), [1, SEQ], 'int32')).values() as Float32Array);
        const row = got.subarray(r * SEQ * V, (r + 1) * SEQ * V);
        const largest = alone.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const apart = alone.reduce((m, v, i) => Math.max(m, Math.abs(v - row[i])), 0);
        assert.ok(apart <= 1e-5 * largest, `rows ${rows.join(',')}: row ${r} (${adapter}) ${apart} from its merged model's (largest ${largest})`);
      });
    }
    // The adapters change the logits, each its own way.
    const [plain, withA, withB] = [[null], ['a'], ['b']].map((r) => batchLogits(served, r as (string | null)[]));
    const differ = (x: Float32Array, y: Float32Array): number => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    assert.ok(differ(plain, withA) > 1e-2 && differ(plain, withB) > 1e-2 && differ(withA, withB) > 1e-2);
  });

  it('ranges: consecutive rows of one adapter make one', () => {
    assert.deepEqual(rangesOf(['a', 'a', null, 'b', 'b', 'a']), [
      { start: 0, end: 2, adapter: 'a' }, { start: 2, end: 3, adapter: null }, { start: 3, end: 5, adapter: 'b' }, { start: 5, end: 6, adapter: 'a' },
    ]);
  });

  it('refuses an adapter of another shape by module, and a name given twice', async () => {
    const wide = await writeAdapter('wide', { ...SPEC, width: 64, heads: 8, headDim: 8 }, 2, 4, ['q_proj'], 13);
    assert.throws(() => loadServedAdapters(base(), [{ name: 'w', dir: wide }]), /model\.layers\.0\.self_attn\.q_proj: lora_A \[2,64\] \/ lora_B \[64,2\] do not fit its weight \[32,32\]/);
    const a = join(dir, 'a');
    assert.throws(() => loadServedAdapters(base(), [{ name: 'x', dir: a }, { name: 'x', dir: a }]), /the adapter name x is given twice/);
  });
});
