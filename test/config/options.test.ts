/**
 * The option tables (src/config/options/) are the one place an option is defined: these tests pin
 * what is derived from them for every entry — the commander option, the worker's argument list
 * (parse(argv(values)) gives the values back), the YAML keys and the training config's fields.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { addOptions } from '../../src/cli/option_table.js';
import { optionsToArgv } from '../../src/config/options/argv.js';
import {
  CONFIG_FILE_OPTIONS, CONFIG_OPTION_NAMES, DASHBOARD_OPTIONS, type OptionTable, SINK_OPTIONS, TRAIN_OPTIONS, WORKER_DASHBOARD_OPTIONS, longFlag,
} from '../../src/config/options/index.js';
import { yamlKeys, yamlOptionValues } from '../../src/config/options/yaml.js';
import { clusterConfigSchema, nnConfigSchema } from '../../src/config/schema.js';
import { nnOptionValues } from '../../src/config/settings.js';
import { type TrainFlags, configFrom, sharedMemoryAllowed } from '../../src/launch/worker_flags.js';
import { workerCommand } from '../../src/cli/worker.js';

const TABLES: Record<string, OptionTable> = {
  TRAIN_OPTIONS, SINK_OPTIONS, DASHBOARD_OPTIONS, WORKER_DASHBOARD_OPTIONS, CONFIG_FILE_OPTIONS,
};

function parse(table: OptionTable, argv: string[]): Record<string, unknown> {
  const cmd = addOptions(new Command('x').exitOverride().configureOutput({ writeErr: () => {} }), table);
  cmd.parse(argv, { from: 'user' });
  return cmd.opts();
}

/** A value each option accepts that is not its default: the last choice, else the first sample text its parser takes. */
function sampleArgs(name: string, table: OptionTable): string[] {
  const spec = table[name];
  if (spec.arg === undefined) return [longFlag(name)];
  const texts = [...(spec.choices ?? []).slice(-1).reverse(), 'js', '7', '0.25', '3,2', '2', 'some/where'];
  for (const text of texts) {
    try {
      const value = spec.parse ? spec.parse(text, undefined) : text;
      if (value !== (spec as { default?: unknown }).default) return spec.repeatable ? [longFlag(name), text, longFlag(name), `${text}-again`] : [longFlag(name), text];
    } catch {
      // not this one
    }
  }
  throw new Error(`no sample value for ${name}`);
}

describe('the option tables', () => {
  it('every option\'s flag is the one commander names by the entry\'s key', () => {
    for (const [tableName, table] of Object.entries(TABLES)) {
      const cmd = addOptions(new Command('x'), table);
      assert.deepEqual(cmd.options.map((o) => o.attributeName()), Object.keys(table), tableName);
      for (const o of cmd.options) assert.ok(o.description.length > 10, `${o.long}: help text`);
    }
  });

  it('round-trips every option of every table: parse(argv(values)) is values for the forwarded ones, nothing for the rest', () => {
    for (const [tableName, table] of Object.entries(TABLES)) {
      for (const name of Object.keys(table)) {
        const values = parse(table, sampleArgs(name, table));
        assert.notEqual(values[name], undefined, `${tableName}.${name}: the sample sets it`);
        const argv = optionsToArgv(table, values);
        if (!table[name].forward) {
          assert.ok(!argv.includes(longFlag(name)), `${tableName}.${name} is not forwarded, yet in ${argv.join(' ')}`);
          continue;
        }
        assert.deepEqual(parse(table, argv), values, `${tableName}.${name}: ${argv.join(' ')}`);
      }
    }
  });

  it('the worker command takes every forwarded option (the launcher\'s argument list parses there)', () => {
    const worker = new Set(workerCommand().options.map((o) => o.attributeName()));
    for (const table of [TRAIN_OPTIONS, SINK_OPTIONS]) {
      for (const [name, spec] of Object.entries(table)) if (spec.forward) assert.ok(worker.has(name), name);
    }
  });

  it('every YAML key an option reads is a key of its file\'s schema and documented in docs/CONFIG.md', () => {
    const doc = readFileSync(new URL('../../../docs/CONFIG.md', import.meta.url), 'utf8');
    const shapes = { nn: nnConfigSchema.shape as Record<string, unknown>, cluster: clusterConfigSchema.shape as Record<string, unknown> };
    for (const entry of yamlKeys(TRAIN_OPTIONS)) {
      const [file, key] = entry.split(':') as ['nn' | 'cluster', string];
      const [top, sub] = key.split('.');
      assert.ok(top in shapes[file], `${entry}: no such key in the ${file} schema`);
      if (sub) {
        const inner = (shapes[file][top] as { shape: Record<string, unknown> }).shape;
        assert.ok(sub in inner, `${entry}: no such key in the ${file} schema`);
      }
      assert.ok(doc.includes(`\`${key}`), `${entry} is not in docs/CONFIG.md`);
    }
  });

  it('nn_config.yaml: each key sets its option; without optimizer and schedule the file means Adam at a constant rate', () => {
    const n = nnConfigSchema.parse({
      batch_size: 16, learning_rate: 0.01, num_epochs: 3, eval_steps: 5, track_gradients: true,
      gradient_clipping: { enabled: true, max_norm: 2 }, model: { type: 'SimpleNN', hidden: 64, layers: 2, width: 32, heads: 4, context: 8 },
      dataset: { name: 'MNIST', data_dir: 'd', augment: false, data_file: 'f.txt', tokenizer: 'bytes' },
      momentum: 0.5, weight_decay: 0.1, seed: 9, max_steps: 40, grad_accum: 2, precision: 'bf16',
    });
    assert.deepEqual(nnOptionValues(n), {
      batchSize: 16, lr: 0.01, epochs: 3, evalEvery: 5, trackGradients: true, clipGradNorm: 2, model: 'mlp', hidden: [64], layers: 2, width: 32, heads: 4, context: 8,
      dataset: 'mnist', dataDir: 'd', augment: false, dataFile: 'f.txt', tokenizer: 'bytes', momentum: 0.5, weightDecay: 0.1, seed: 9, maxSteps: 40, gradAccum: 2, precision: 'bf16',
      optimizer: 'adam', schedule: 'constant',
    });
    const sgd = nnConfigSchema.parse({ batch_size: 1, learning_rate: 1, num_epochs: 1, model: { type: 'cnn' }, dataset: { name: 'cifar10' }, optimizer: 'sgd', schedule: 'cosine', gradient_clipping: { enabled: false } });
    assert.deepEqual(nnOptionValues(sgd), { batchSize: 1, lr: 1, epochs: 1, model: 'cnn', dataset: 'cifar10', optimizer: 'sgd', schedule: 'cosine' });
  });

  it('cluster_config.yaml: async-ps keys set their options; a file without strategy means ps', () => {
    const c = clusterConfigSchema.parse({ num_workers: 2, seed: 3, worker_update_interval: 4, use_quantization: true, staleness_bound: 1, server_trains: true, ps_reply: 'weights' });
    assert.deepEqual(yamlOptionValues(TRAIN_OPTIONS, 'cluster', c), { strategy: 'ps', seed: 3, pushEvery: 4, quantize: 'int8', stalenessBound: 1, serverTrains: true, psReply: 'weights' });
    assert.equal(yamlOptionValues(TRAIN_OPTIONS, 'cluster', clusterConfigSchema.parse({ num_workers: 1, use_quantization: false })).quantize, 'none');
  });

  it('every option marked for the training config sets the field of its name', () => {
    const values = parse(TRAIN_OPTIONS, CONFIG_OPTION_NAMES.flatMap((name) => sampleArgs(name, TRAIN_OPTIONS))) as unknown as TrainFlags;
    const config = configFrom(values, 1) as unknown as Record<string, unknown>;
    assert.ok(CONFIG_OPTION_NAMES.length >= 20);
    for (const name of CONFIG_OPTION_NAMES) assert.deepEqual(config[name], values[name], name);
  });
});

describe('--comm-backend (and --backend gloo, torch.distributed\'s spelling)', () => {
  it('auto (the default) lets ranks on one host share memory; tcp keeps every link on TCP; gloo changes nothing', () => {
    const flags = (argv: string[]): TrainFlags => parse(TRAIN_OPTIONS, argv) as unknown as TrainFlags;
    assert.equal(sharedMemoryAllowed(flags([])), true);
    assert.equal(sharedMemoryAllowed(flags(['--comm-backend', 'auto'])), true);
    assert.equal(sharedMemoryAllowed(flags(['--comm-backend', 'tcp'])), false);
    assert.equal(sharedMemoryAllowed(flags(['--backend', 'gloo'])), true);
    assert.throws(() => flags(['--comm-backend', 'nccl']), /expected one of auto, tcp/);
  });

  it('--lr 0 is taken, as torch and the HF Trainer take it (the training config carries it); a negative rate is refused', () => {
    assert.equal(parse(TRAIN_OPTIONS, ['--lr', '0']).lr, 0);
    assert.equal(configFrom(parse(TRAIN_OPTIONS, ['--lr', '0', '--model', 'mlp']) as unknown as TrainFlags, 1).lr, 0);
    assert.throws(() => parse(TRAIN_OPTIONS, ['--lr', '-0.1']), /-0\.1/);
  });
});
