import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { addConfigFlags } from '../../src/cli/config.js';
import { addTrainFlags } from '../../src/cli/train_flags.js';
import { loadClusterConfig, loadConfigFile, loadNnConfig } from '../../src/config/load.js';
import { clusterOptionValues, rankFromHostLists } from '../../src/config/settings.js';
import { ConfigError } from '../../src/util/errors.js';
import { CLI } from '../helpers/cli.js';
import { runCliProcess, tempDir } from '../helpers/cluster.js';

const EXAMPLES = join(import.meta.dirname, '../../../examples');
const dir = tempDir('config');
let n = 0;
function file(text: string, name = `c${n++}.yaml`): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

function rejects(fn: () => unknown, file: string, key: string, expected: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${err}`);
    assert.equal(err.file, file);
    assert.equal(err.path, key);
    assert.match(err.message, expected);
    assert.ok(err.message.startsWith(key ? `${file} (${key})` : `${file}:`), err.message);
    return true;
  });
}

describe('SmolCluster config files', () => {
  it('the examples load exactly as SmolCluster documents them', () => {
    const c = loadClusterConfig(join(EXAMPLES, 'cluster_config.yaml'));
    assert.deepEqual(c, { host_ip: '0.0.0.0', worker_connect_ip: '127.0.0.1', port: 65432, num_workers: 2, timeout: 0.5 });
    const nn = loadNnConfig(join(EXAMPLES, 'nn_config.yaml'));
    assert.equal(nn.model.type, 'SimpleNN');
    assert.equal(nn.dataset.name, 'MNIST');
    assert.equal(loadConfigFile(join(EXAMPLES, 'cluster_config_hosts.yaml')).kind, 'cluster');
    assert.deepEqual(clusterOptionValues(c), { strategy: 'ps', worldSize: 3, stragglerTimeout: 0.5, masterPort: 65432, master: '127.0.0.1:65432' });
  });

  it('errors name the file, the key and what was expected', () => {
    const base = 'batch_size: 32\nlearning_rate: 0.1\nnum_epochs: 1\nmodel: {type: SimpleNN, hidden: 64}\ndataset: {name: MNIST}\n';
    let f = file(base.replace('32', '"32"'));
    rejects(() => loadNnConfig(f), f, 'batch_size', /expected a number, got a string/);
    f = file(base.replace('learning_rate: 0.1\n', ''));
    rejects(() => loadNnConfig(f), f, 'learning_rate', /missing: expected a number/);
    f = file(base.replace('hidden: 64', 'hidden: 64, input_dim: 100'));
    rejects(() => loadNnConfig(f), f, 'model.input_dim', /expected 784/);
    f = file(base.replace('MNIST', 'CIFAR'));
    rejects(() => loadNnConfig(f), f, 'dataset.name', /expected MNIST/);
    f = file(`${base}eval_step: 10\n`);
    rejects(() => loadNnConfig(f), f, 'eval_step', /unknown key/);
    f = file('num_workers: 2\nport: 70000\n');
    rejects(() => loadClusterConfig(f), f, 'port', /65535/);
    f = file('num_workers: 0\n');
    rejects(() => loadClusterConfig(f), f, 'num_workers', /≥ 1/);
    f = file('num_workers: 3\nworkers: [a, b]\n');
    rejects(() => loadClusterConfig(f), f, 'workers', /2 host\(s\) but num_workers is 3/);
    f = file('num_workers: 1\nhost_ip: {a: 10.0.0.1}\nserver: a\nworkers: [b]\n');
    rejects(() => loadClusterConfig(f), f, 'workers.0', /"b" has no address/);
    f = file('num_workers: 2\n  x: : 3\n');
    rejects(() => loadClusterConfig(f), f, 'line 1, column 14', /not valid YAML/);
    rejects(() => loadClusterConfig(join(dir, 'missing.yaml')), join(dir, 'missing.yaml'), '', /cannot read the file \(ENOENT\)/);
    f = file(`${base}gradient_clipping: {enabled: true}\n`);
    rejects(() => loadNnConfig(f), f, 'gradient_clipping.max_norm', /enabled is true, so max_norm .* is required/);
  });

  it('host lists give each host its rank (server 0, workers 1..N; allreduce 0..N-1)', () => {
    const f = join(EXAMPLES, 'cluster_config_hosts.yaml');
    const c = loadClusterConfig(f);
    assert.equal(rankFromHostLists(f, c, 'mini1'), 0);
    assert.equal(rankFromHostLists(f, c, 'mini3.local'), 2);
    assert.equal(rankFromHostLists(f, c, 'elsewhere'), undefined);
    assert.equal(rankFromHostLists(f, { ...c, strategy: 'allreduce' }, 'mini3'), 1);
    const v = clusterOptionValues(c);
    assert.equal(v.master, '10.10.0.1:65432');
    assert.equal(v.pushEvery, 4);
    assert.equal(v.quantize, 'int8');
  });

  it('flags typed on the command line override the files; the files override defaults', async () => {
    const nn = join(EXAMPLES, 'nn_config.yaml');
    const parse = async (args: string[]): Promise<Record<string, unknown>> => {
      let seen: Record<string, unknown> = {};
      const cmd = addConfigFlags(addTrainFlags(new Command('t'))).action((f: Record<string, unknown>) => {
        seen = f;
      });
      await cmd.parseAsync(args, { from: 'user' });
      return seen;
    };
    const fromFile = await parse(['--nn', nn, '--cluster', join(EXAMPLES, 'cluster_config.yaml')]);
    assert.equal(fromFile.lr, 0.001);
    assert.equal(fromFile.evalEvery, 200);
    assert.equal(fromFile.trackGradients, true);
    assert.deepEqual(fromFile.hidden, [128]);
    assert.equal(fromFile.strategy, 'ps');
    assert.equal(fromFile.stragglerTimeout, 0.5);
    const overridden = await parse(['--nn', nn, '--lr', '0.5', '--eval-every', '7', '--batch-size', '8']);
    assert.equal(overridden.lr, 0.5);
    assert.equal(overridden.evalEvery, 7);
    assert.equal(overridden.batchSize, 8);
    assert.equal(overridden.epochs, 2);
  });

  it('an nn_config.yaml means SmolCluster\'s training (Adam, constant LR, averaged gradients sent back) unless it says otherwise', async () => {
    const parse = async (args: string[]): Promise<Record<string, unknown>> => {
      let seen: Record<string, unknown> = {};
      await addConfigFlags(addTrainFlags(new Command('t'))).action((f: Record<string, unknown>) => {
        seen = f;
      }).parseAsync(args, { from: 'user' });
      return seen;
    };
    const base = 'batch_size: 32\nlearning_rate: 0.001\nnum_epochs: 2\nmodel: {type: SimpleNN}\ndataset: {name: MNIST}\n';
    const smol = await parse(['--nn', file(base)]);
    assert.deepEqual([smol.optimizer, smol.schedule, smol.psReply, smol.lr], ['adam', 'constant', 'gradients', 0.001]);
    const ours = await parse(['--nn', file(`${base}optimizer: sgd\nschedule: cosine\nmomentum: 0.9\nweight_decay: 0.0001\n`)]);
    assert.deepEqual([ours.optimizer, ours.schedule, ours.momentum, ours.weightDecay], ['sgd', 'cosine', 0.9, 0.0001]);
    const flagged = await parse(['--nn', file(base), '--optimizer', 'sgd', '--ps-reply', 'weights']);
    assert.deepEqual([flagged.optimizer, flagged.psReply], ['sgd', 'weights']);
    const cluster = file('num_workers: 2\nps_reply: weights\n');
    assert.equal((await parse(['--cluster', cluster, '--nn', file(base)])).psReply, 'weights');
    const plain = await parse([]);
    assert.deepEqual([plain.optimizer, plain.schedule, plain.psReply], [undefined, undefined, undefined], 'without a file: our defaults');
  });

  it('under allreduce, cluster_config timeout bounds every peer wait', () => {
    assert.equal(clusterOptionValues(loadClusterConfig(file('num_workers: 2\nstrategy: allreduce\ntimeout: 7\n'))).timeout, 7);
    assert.equal(clusterOptionValues(loadClusterConfig(file('num_workers: 2\ntimeout: 0.5\n'))).timeout, undefined, 'ps: the straggler deadline only');
  });

  it('`config check` prints ok per file, and one error line naming the file and key', async () => {
    const ok = await runCliProcess(['config', 'check', join(EXAMPLES, 'cluster_config.yaml'), join(EXAMPLES, 'nn_config.yaml')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /cluster_config\.yaml: ok \(cluster config: ps, 2 workers at 127\.0\.0\.1:65432\)/);
    assert.match(ok.stdout, /nn_config\.yaml: ok \(nn config: SimpleNN on MNIST/);
    const bad = file('num_workers: two\n');
    const r = await runCliProcess(['config', 'check', bad]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `smolcluster: error: ${bad} (num_workers): expected a number, got a string`);
    assert.ok(CLI);
  });
});
