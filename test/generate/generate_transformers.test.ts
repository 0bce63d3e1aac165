/**
 * Greedy generation against transformers' `generate` (do_sample=False, its own KV cache) on
 * random-weight tiny models of each family: our model written with saveFolder, loaded there, and the
 * new tokens equal token for token. Skipped without a Python that has transformers, except under CI
 * with the venv present (hf_transformers.ts decides).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { generate } from '../../src/generate/generate.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { Rng } from '../../src/util/rng.js';
import { PYTHON, SKIP } from '../nn/interchange/hf_transformers.js';
import { FAMILIES, randomModel } from './families.js';
import { runReference } from '../helpers/python_reference.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/generate/hf_generate.py');
const dir = mkdtempSync(join(tmpdir(), 'smol-generate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Job {
  folder: string;
  prompt: number[];
  count: number;
}

/** transformers' new ids for every job, from one Python process (its imports are most of the cost). */
function theirs(jobs: Job[]): number[][] {
  const file = join(dir, 'jobs.json');
  writeFileSync(file, JSON.stringify(jobs));
  const r = runReference({ python: PYTHON!, args: [SCRIPT, file], root: dir, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`hf_generate.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as number[][];
}

describe('greedy generate equals transformers\' generate token for token', { skip: SKIP }, () => {
  // Every family's random model, saved; transformers generates for all of them at once.
  const cases = FAMILIES.map(([name, spec], i) => {
    const rng = new Rng(i);
    return { name, spec, model: randomModel(spec, 11 + i), folder: join(dir, `model-${i}`), prompt: Array.from({ length: 6 }, () => rng.int(61)) };
  });
  let want: number[][] = [];
  before(() => {
    for (const c of cases) saveFolder(c.folder, c.model, c.spec);
    want = theirs(cases.map((c) => ({ folder: c.folder, prompt: c.prompt, count: 20 })));
  });

  cases.forEach((c, i) => {
    it(`${c.name}: 20 new tokens after a 6-token prompt`, async () => {
      const ours = await generate(c.model, c.prompt, { maxNewTokens: 20 });
      assert.equal(ours.stopReason, 'length');
      assert.deepEqual(ours.ids, want[i]);
    });
  });
});
