/**
 * The package root (src/index.ts, package.json "exports") is the library's surface (docs/API.md):
 * it offers what the CLI can do, and importing it starts nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as smolcluster from '../src/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What `smolcluster train` does, by the names docs/API.md teaches. */
const SURFACE: Record<string, string[]> = {
  'tensors and autograd': ['Tensor', 'backward', 'noGrad', 'crossEntropy', 'matmul', 'setBackend', 'nativeAvailable'],
  'models and presets': ['createModel', 'defaultSpec', 'describeSpec', 'MODEL_NAMES', 'GPT2_SIZES', 'BERT_SIZES', 'gpt2Spec', 'bertSpec', 'resnetSpec', 'Module', 'Linear'],
  'data loaders': ['loadMnist', 'loadCifar10', 'syntheticImage', 'syntheticClassification', 'syntheticRegression', 'syntheticText', 'loadText', 'makeTokenizer', 'loadDataset', 'DistributedSampler', 'BatchLoader'],
  'optimizers and schedules': ['SGD', 'Adam', 'AdamW', 'makeOptimizer', 'cosineLr', 'stepLr', 'constantLr', 'makeSchedule', 'clipGradNorm'],
  'the training loop': ['train', 'defaultConfig', 'loadTrainData', 'evaluate', 'specFor'],
  strategies: ['LocalStrategy', 'AllReduceStrategy', 'LoopDrivenStrategy', 'DelegatingStrategy', 'createParamServerStrategy', 'createAsyncPsStrategy', 'DiLoCoStrategy', 'createLocalSgdStrategy', 'createClusterStrategy', 'CLUSTER_STRATEGIES'],
  processes: ['rendezvous', 'ProcessGroup', 'createInProcessTransports', 'StoreServer', 'StoreClient'],
  'model files and checkpoints': ['saveSafetensors', 'loadSafetensors', 'loadSafetensorsModel', 'readSafetensors', 'writeSafetensors', 'saveModel', 'loadModel', 'Checkpointer', 'saveCheckpoint', 'loadCheckpoint', 'listCheckpoints'],
  runs: ['loadRun', 'readMetrics', 'readEvents', 'compareRuns', 'startDashboard'],
  errors: ['SmolError', 'ConfigError', 'PeerError', 'TimeoutError', 'DataError', 'CheckpointError', 'ExperimentFileError'],
};

describe('the package root', () => {
  it('exports what the CLI can do', () => {
    const missing = Object.entries(SURFACE).flatMap(([what, names]) => names.filter((n) => !(n in smolcluster)).map((n) => `${what}: ${n}`));
    assert.deepEqual(missing, []);
  });

  it('is what package.json "exports" and "types" name', () => {
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { exports: { '.': { types: string; default: string } }; types: string };
    assert.equal(pkg.exports['.'].default, './dist/src/index.js');
    assert.equal(pkg.exports['.'].types, './dist/src/index.d.ts');
    assert.equal(pkg.types, 'dist/src/index.d.ts');
  });

  it('starts nothing on import: a process that imports it exits at once', async () => {
    const code = `import('${ROOT}dist/src/index.js').then((m) => console.log(typeof m.train))`;
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ['-e', code], { timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }));
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'function');
  });
});
