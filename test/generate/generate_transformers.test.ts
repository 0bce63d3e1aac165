/**
 * Greedy generation against transformers' `generate` (do_sample=False, its own KV cache) on
 * random-weight tiny models of each family: our model written with saveFolder, loaded there, and the
 * new tokens equal token for token. Skipped without a Python that has transformers, except under CI
 * with the venv present (hf_transformers.ts decides).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { generate } from '../../src/generate/generate.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { Rng } from '../../src/util/rng.js';
import { PYTHON, SKIP } from '../nn/interchange/hf_transformers.js';
import { FAMILIES, randomModel } from './families.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/generate/hf_generate.py');
const dir = mkdtempSync(join(tmpdir(), 'smol-generate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function theirs(folder: string, prompt: number[], count: number): number[] {
  const r = spawnSync(PYTHON!, [SCRIPT, folder, JSON.stringify(prompt), String(count)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`hf_generate.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as number[];
}

describe('greedy generate equals transformers\' generate token for token', { skip: SKIP }, () => {
  FAMILIES.forEach(([name, spec], i) => {
    it(`${name}: 20 new tokens after a 6-token prompt`, async () => {
      const model = randomModel(spec, 11 + i);
      const folder = join(dir, `model-${i}`);
      saveFolder(folder, model, spec);
      const rng = new Rng(i);
      const prompt = Array.from({ length: 6 }, () => rng.int(61));
      const ours = await generate(model, prompt, { maxNewTokens: 20 });
      assert.equal(ours.stopReason, 'length');
      assert.deepEqual(ours.ids, theirs(folder, prompt, 20));
    });
  });
});
