import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigProblems } from '../../src/config/problems.js';
import { checkRunInputs, preflight } from '../../src/launch/preflight.js';
import { defaultConfig } from '../../src/train/run/config.js';
import { ConfigError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'smolcluster-preflight-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('checks before any worker starts', () => {
  it('an MLP on a token dataset is refused on the command line, naming both flags', () => {
    assert.throws(() => checkRunInputs({ model: 'mlp', dataset: 'synthetic_text' }), (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^command line \(--model, --dataset\): model mlp takes images or vectors, but dataset synthetic_text gives tokens/);
      return true;
    });
    checkRunInputs({ model: 'gpt2-tiny', dataset: 'synthetic_text' });
  });

  it('a text dataset without its file and a model that cannot read it: both problems at once', () => {
    assert.throws(() => checkRunInputs({ model: 'mlp', dataset: 'text', dataFile: join(dir, 'none.txt') }), (e: Error) => {
      assert.ok(e instanceof ConfigProblems);
      assert.equal(e.problems.length, 2);
      assert.match(e.message, /none\.txt: text file not found/);
      assert.match(e.message, /model mlp takes images or vectors/);
      return true;
    });
    assert.throws(() => checkRunInputs({ model: 'gpt2-tiny', dataset: 'text' }), /--dataset text needs --data-file FILE/);
  });

  it('a corrupt --init is read once, naming the file', () => {
    const init = join(dir, 'bad.safetensors');
    writeFileSync(init, 'garbage');
    assert.throws(() => preflight({ ...defaultConfig('mlp'), dataset: 'synthetic-regression', init }), /bad\.safetensors/);
  });
});
