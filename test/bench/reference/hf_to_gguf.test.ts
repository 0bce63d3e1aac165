/**
 * bench:generate's GGUF converter (bench/reference/hf_to_gguf.py) writes files llama.cpp runs as
 * our model: tiny GPT-2 and Llama models saved as Hugging Face folders, converted (F32 and BF16, one
 * Python process), loaded by node-llama-cpp on the cpu; llama.cpp's greedy tokens from the F32
 * file equal our generate()'s (which fails on a wrong transpose, a missed rotary permutation or a
 * misnamed tensor), and the BF16 file loads and generates.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { generate, type CausalLm } from '../../../src/generate/generate.js';
import { saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { createModel, defaultSpec } from '../../../src/nn/models/index.js';
import { llamaCppGeneration, loadNodeLlamaCpp } from '../../../bench/lib/generate_llama_cpp.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../bench/reference/hf_to_gguf.py');
const VENV = '/opt/torchvenv/bin/python';
const PYTHON = [process.env.SMOLCLUSTER_PYTHON, VENV].filter((p): p is string => !!p)
  .find((p) => spawnSync(p, ['-c', 'import gguf, safetensors, numpy'], { encoding: 'utf8' }).status === 0);
const llamaCpp = await loadNodeLlamaCpp();
// CI has the venv (with gguf) and installs node-llama-cpp (.ci/run): a missing one there is a failure, not a skip.
const SKIP = !PYTHON ? 'no Python with gguf (set SMOLCLUSTER_PYTHON or build /opt/torchvenv)' : typeof llamaCpp === 'string' ? llamaCpp : false;
if (SKIP && process.env.CI === 'true' && existsSync(VENV)) throw new Error(`hf_to_gguf test: ${SKIP}`);

const MODELS = [
  { name: 'gpt2-tiny', vocab: 300 },
  { name: 'llama-tiny', vocab: 256 },
] as const;
const PROMPT = [5, 17, 42, 99, 3, 250, 7, 64];

/**
 * Query and key weights scaled up: at init (std 0.02) attention is near uniform, so a wrong rotary
 * order or q/k layout would not change a greedy token; sharp attention makes it change them.
 */
function sharpenAttention(model: CausalLm): void {
  for (const [name, p] of model.namedParameters()) {
    if (!/q_proj|k_proj|c_attn/.test(name) || !name.endsWith('weight')) continue;
    // GPT-2's c_attn is [q; k; v] rows ([3·width, width]): its q and k rows only.
    const rows = name.includes('c_attn') ? (2 * p.shape[0]) / 3 : p.shape[0];
    (p.values() as Float32Array).subarray(0, rows * p.shape[1]).forEach((v, i, a) => (a[i] = 25 * v));
  }
}

describe('hf_to_gguf.py: llama.cpp runs the converted weights as we do', { skip: SKIP }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-gguf-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const models = MODELS.map(({ name, vocab }) => {
    const spec = defaultSpec(name, [64], vocab);
    const model = createModel(spec, 11) as CausalLm;
    sharpenAttention(model);
    saveFolder(join(dir, name), model, spec);
    return { name, model, folder: join(dir, name) };
  });
  const convert = (dtype: 'f32' | 'bf16'): void => {
    const pairs = models.flatMap((m) => [m.folder, join(dir, `${m.name}-${dtype}.gguf`)]);
    const r = spawnSync(PYTHON!, [SCRIPT, ...pairs, '--dtype', dtype], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
  };

  for (const m of models) {
    it(`${m.name}: llama.cpp's greedy tokens from the F32 file equal generate()'s`, async () => {
      if (!existsSync(join(dir, `${m.name}-f32.gguf`))) convert('f32');
      const ours = await generate(m.model, PROMPT, { maxNewTokens: 12 });
      const { runs } = await llamaCppGeneration(join(dir, `${m.name}-f32.gguf`), [PROMPT], [1], 12);
      assert.deepEqual(runs[0].firstIds, ours.ids, `llama.cpp ${runs[0].firstIds} against ours ${ours.ids}`);
    });
  }

  it('BF16 files load and generate', async () => {
    convert('bf16');
    for (const m of models) {
      const { runs } = await llamaCppGeneration(join(dir, `${m.name}-bf16.gguf`), [PROMPT], [1], 4);
      assert.equal(runs[0].firstIds.length, 4);
    }
  });
});
