/**
 * LoRA through the CLI: `train --workers 2 --init DIR --lora-rank 4` (2 processes, all-reduce over
 * TCP) saves a PEFT adapter folder whose tensors are the adapters of both ranks alike, with each
 * step's bytes on the wire the adapters' gradients only; then `--adapter` that folder with
 * `--merge-lora` writes a plain Hugging Face folder that loads with the adapted weights.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadPretrained, saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { loadFolderWeights } from '../../src/nn/interchange/model_io.js';
import { loadAdapter, mergeLora, readSafetensors } from '../../src/nn/index.js';
import { type LlamaSpec, createModel } from '../../src/nn/models/index.js';
import { runCli } from '../helpers/cli.js';
import { stepRecords } from '../helpers/cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-lora-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 80, context: 32, layers: 2, width: 16, intermediate: 24, heads: 4, kvHeads: 2, headDim: 4,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: true, qkvBias: false, qkNorm: false, dropout: 0,
};
const init = join(dir, 'base');
saveFolder(init, createModel(SPEC, 1), SPEC);
const common = ['--init', init, '--dataset', 'synthetic_text', '--context', '16', '--eval-every', '0', '--threads', '1', '--experiments-dir', dir];

describe('train --lora-rank (CLI)', { timeout: 180_000 }, () => {
  it('2 workers train and save a PEFT adapter folder; only adapter gradients travel; --adapter + --merge-lora writes the merged folder', async () => {
    const adapter = join(dir, 'adapter');
    const r = await runCli(['train', '--workers', '2', '--lora-rank', '4', '--lora-alpha', '8', '--lora-targets', 'q_proj,v_proj', '--max-steps', '3', '--batch-size', '4',
      '--name', 'lora', '--save', adapter, ...common], { timeoutMs: 150_000 });
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8'));
    assert.deepEqual([config.r, config.lora_alpha, config.target_modules, config.base_model_name_or_path], [4, 8, ['q_proj', 'v_proj'], init]);
    const tensors = readSafetensors(join(adapter, 'adapter_model.safetensors')).tensors;
    assert.deepEqual([...tensors.keys()].sort().slice(0, 2), ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight']);
    // q_proj: 4·16 + 16·4; v_proj (2 kv heads × 4): 4·16 + 8·4; two layers.
    const adapterValues = 2 * (4 * 16 + 16 * 4 + 4 * 16 + 8 * 4);
    assert.equal([...tensors.values()].reduce((n, t) => n + t.bytes.length / 4, 0), adapterValues);
    for (const rank of [0, 1]) {
      for (const s of stepRecords(join(dir, 'lora', 'metrics.jsonl'), rank) as unknown as Array<{ bytes_sent: number }>) {
        assert.ok(s.bytes_sent >= 4 * adapterValues && s.bytes_sent < 4 * adapterValues + 1024, `rank ${rank}: ${s.bytes_sent} bytes a step`);
      }
    }

    const merged = join(dir, 'merged');
    const m = await runCli(['train', '--adapter', adapter, '--merge-lora', '--max-steps', '1', '--lr', '1e-9', '--name', 'merge', '--save', merged, ...common], { timeoutMs: 120_000 });
    assert.equal(m.code, 0, m.stderr);
    assert.ok(!existsSync(join(merged, 'adapter_config.json')));
    // The merged folder holds the base plus B·A (the step at lr 1e-9 moves nothing measurable).
    const expected = createModel(SPEC, 0);
    loadFolderWeights(init, expected, SPEC);
    loadAdapter(adapter, expected);
    const want = new Map((await mergeLora(expected, SPEC)).namedParameters());
    const { model } = await loadPretrained(merged);
    for (const [name, p] of model.namedParameters()) {
      const w = want.get(name)!.values() as Float32Array;
      const got = p.values() as Float32Array;
      const d = got.reduce((mx, v, i) => Math.max(mx, Math.abs(v - w[i])), 0);
      assert.ok(d < 1e-6, `${name} differs by ${d}`);
    }
  });
});
