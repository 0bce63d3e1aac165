/** Configuration files: every problem of every file in one pass, unknown keys with "did you mean", whole YAML syntax errors. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadClusterConfig, loadNnConfig } from '../../src/config/load.js';
import { ConfigProblems } from '../../src/config/problems.js';
import { closest } from '../../src/config/spellings.js';
import { ConfigError } from '../../src/util/errors.js';
import { runCliProcess, tempDir } from '../helpers/cluster.js';
import { Command } from 'commander';
import { addConfigFlags } from '../../src/cli/config.js';
import { addTrainFlags, datasetFlag, modelFlag } from '../../src/cli/train_flags.js';

const dir = tempDir('config-problems');
let n = 0;
function file(text: string): string {
  const f = join(dir, `p${n++}.yaml`);
  writeFileSync(f, text);
  return f;
}
const NN = 'batch_size: 32\nlearning_rate: 0.1\nnum_epochs: 1\nmodel: {type: SimpleNN}\ndataset: {name: MNIST}\n';

describe('closest', () => {
  it('finds the key a typo meant: a missing letter, a swap, another case or separator', () => {
    assert.equal(closest('learnin_rate', ['batch_size', 'learning_rate']), 'learning_rate');
    assert.equal(closest('prot', ['port', 'host_ip']), 'port');
    assert.equal(closest('numWorkers', ['num_workers', 'workers']), 'num_workers');
    assert.equal(closest('banana', ['port', 'host_ip']), null);
  });
});

describe('configuration problems', () => {
  it('an unknown key names the key it probably meant, and that key is not also reported missing', () => {
    const f = file(NN.replace('learning_rate', 'learnin_rate'));
    assert.throws(() => loadNnConfig(f), (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.path, 'learnin_rate');
      assert.match(e.message, /unknown key: did you mean learning_rate\?/);
      assert.doesNotMatch(e.message, /missing/);
      return true;
    });
  });

  it('reports every problem of a file at once', () => {
    const f = file('num_workers: two\nprot: 5\ntimeout: -1\n');
    assert.throws(() => loadClusterConfig(f), (e: Error) => {
      assert.ok(e instanceof ConfigProblems);
      assert.deepEqual(e.problems.map((p) => p.path).sort(), ['num_workers', 'prot', 'timeout']);
      assert.match(e.message, /prot\): unknown key: did you mean port\?/);
      return true;
    });
  });

  it('a YAML syntax error is whole: what, where, and the offending line with a caret', () => {
    const f = file('num_workers: 2\n  x: : 3\n');
    assert.throws(() => loadClusterConfig(f), (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.path, 'line 1, column 14');
      assert.doesNotMatch(e.message, /column \d+:$/m, 'no sentence cut off before its code frame');
      assert.match(e.message, /\n {4}num_workers: 2\n {4} {13}\^/);
      return true;
    });
  });

  it('a model that cannot read the dataset is refused in the nn file', () => {
    const f = file(NN.replace('MNIST', 'synthetic_text'));
    assert.throws(() => loadNnConfig(f), /\(model\.type\): model mlp takes images or vectors, but dataset synthetic_text gives tokens/);
  });

  it('`config check` reports every problem of every file, then fails', async () => {
    const a = file(NN.replace('learning_rate', 'learnin_rate'));
    const b = file('num_workers: two\n');
    const ok = file(NN);
    const c = file('num_workers: 2\n  x: : 3\n');
    const r = await runCliProcess(['config', 'check', a, b, ok, c]);
    assert.equal(r.code, 1);
    for (const f of [a, b, c]) assert.match(r.stderr, new RegExp(`smolcluster: error: ${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(`));
    assert.match(r.stdout, new RegExp(`${ok.split('/').pop()!.replace('.', '\\.')}: ok`));
  });
});

describe('names and files on the command line', () => {
  it('an unknown --model or --dataset says which one was probably meant', () => {
    assert.throws(() => modelFlag('resnet5'), /unknown model "resnet5" \(did you mean resnet50\?\)/);
    assert.throws(() => datasetFlag('cifar'), /unknown dataset "cifar" \(did you mean cifar10\?\)/);
    assert.throws(() => modelFlag('vit'), (e: Error) => !/did you mean/.test(e.message));
  });

  it('--cluster and --nn: the problems of both files in one error', () => {
    const cluster = file('num_workers: two\nprot: 5\n');
    const nn = file(NN.replace('learning_rate', 'learnin_rate'));
    const cmd = addConfigFlags(addTrainFlags(new Command('train'))).exitOverride().action(() => {});
    assert.throws(() => cmd.parse(['--cluster', cluster, '--nn', nn], { from: 'user' }), (e: Error) => {
      assert.ok(e instanceof ConfigProblems);
      assert.deepEqual(e.problems.map((p) => `${p.file === cluster ? 'cluster' : 'nn'} ${p.path}`).sort(), ['cluster num_workers', 'cluster prot', 'nn learnin_rate']);
      return true;
    });
  });
});
