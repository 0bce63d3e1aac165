import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readConfig } from '../../../src/metrics/reader.js';
import { claimNamedRun, createExperiment, experimentName, experimentPaths, failedBeforeTraining } from '../../../src/train/run/experiment.js';

const root = mkdtempSync(join(tmpdir(), 'smolcluster-experiment-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('experimentName', () => {
  const at = new Date('2026-11-23T09:01:39.123Z');

  it('is the model, the UTC second and a random suffix', () => {
    assert.match(experimentName('mlp', at), /^mlp-20261123-090139Z-[0-9a-f]{6}$/);
  });

  it('never gives two runs started in the same second the same folder', () => {
    const names = new Set(Array.from({ length: 200 }, () => experimentName('mlp', at)));
    assert.equal(names.size, 200);
  });

  it('never picks a name whose folder exists: it draws again', () => {
    const dir = join(root, 'taken');
    mkdirSync(join(dir, 'mlp-20261123-090139Z-aaaaaa'), { recursive: true });
    const draws = ['aaaaaa', 'bbbbbb'];
    assert.equal(experimentName('mlp', at, dir, () => draws.shift()!), 'mlp-20261123-090139Z-bbbbbb');
  });
});

describe('claimNamedRun', () => {
  const withRun = (name: string): string => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'metrics.jsonl'), '{}\n');
    return dir;
  };

  it('refuses a --name whose folder holds a run, naming the folder and the ways out', () => {
    const dir = withRun('used');
    assert.throws(() => claimNamedRun(dir, {}), (e: Error) => {
      assert.match(e.message, /--name/);
      assert.ok(e.message.includes(dir), e.message);
      assert.match(e.message, /metrics\.jsonl/);
      assert.match(e.message, /--resume auto/);
      assert.match(e.message, /--overwrite/);
      return true;
    });
    assert.ok(existsSync(join(dir, 'metrics.jsonl')));
  });

  it('lets --resume continue it, untouched', () => {
    const dir = withRun('resumed');
    claimNamedRun(dir, { resume: 'auto' });
    assert.ok(existsSync(join(dir, 'metrics.jsonl')));
  });

  it('lets --overwrite replace it: the old run is removed', () => {
    const dir = withRun('replaced');
    claimNamedRun(dir, { overwrite: true });
    assert.equal(existsSync(dir), false);
  });

  /** What a run that failed before its first step leaves: its config, empty metrics, run_start and a failed run_end. */
  const failedEarly = (name: string, more: (dir: string) => void = () => {}): string => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), '{}');
    writeFileSync(join(dir, 'metrics.jsonl'), '');
    writeFileSync(join(dir, 'events.jsonl'), `${JSON.stringify({ kind: 'run_start' })}\n${JSON.stringify({ kind: 'run_end', status: 'failed', error: 'EISDIR' })}\n`);
    more(dir);
    return dir;
  };

  it('lets a run that failed before its first step (say, a bad --init) be rerun under its name', () => {
    const dir = failedEarly('failed-early');
    assert.equal(failedBeforeTraining(dir), true);
    claimNamedRun(dir, {});
  });

  it('still refuses a failed run that recorded steps, saved a checkpoint or a result, or one with no failed run_end', () => {
    const cases = [
      failedEarly('failed-late', (d) => writeFileSync(join(d, 'metrics.jsonl'), '{"step":1}\n')),
      failedEarly('failed-checkpointed', (d) => {
        mkdirSync(join(d, 'checkpoints'));
        writeFileSync(join(d, 'checkpoints', 'step-10.ckpt'), '');
      }),
      failedEarly('failed-result', (d) => writeFileSync(join(d, 'result.json'), '{}')),
      failedEarly('still-running', (d) => writeFileSync(join(d, 'events.jsonl'), `${JSON.stringify({ kind: 'run_start' })}\n`)),
    ];
    for (const dir of cases) {
      assert.equal(failedBeforeTraining(dir), false, dir);
      assert.throws(() => claimNamedRun(dir, {}), /already holds a run/, dir);
    }
  });

  it('accepts a name that is new, or an empty folder', () => {
    claimNamedRun(join(root, 'new'), {});
    mkdirSync(join(root, 'empty'));
    claimNamedRun(join(root, 'empty'), {});
  });
});

describe('config.json', () => {
  it('is named and versioned, with snake_case keys', () => {
    const paths = experimentPaths(root, 'config-json');
    createExperiment(paths, { model: 'mlp', batchSize: 32, evalBatchSize: 1000, workers: 2 });
    assert.deepEqual(JSON.parse(readFileSync(paths.config, 'utf8')), {
      schema: 'smolcluster-config', schema_version: 1, model: 'mlp', batch_size: 32, eval_batch_size: 1000, workers: 2,
    });
  });

  it('a file written before (camelCase, no schema) reads with the same keys', () => {
    const dir = join(root, 'old-config');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: 'mlp', batchSize: 32, workers: 2 }));
    assert.deepEqual(readConfig(join(dir, 'config.json')), { model: 'mlp', batch_size: 32, workers: 2 });
  });

  it('a --name folder holding only files no run wrote (the data, say) is not a run', () => {
    const dir = join(root, 'data-only');
    mkdirSync(dir);
    writeFileSync(join(dir, 'data_batch_1.bin'), '');
    claimNamedRun(dir, {});
  });
});
