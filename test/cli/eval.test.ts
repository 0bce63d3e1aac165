/**
 * `smolcluster eval` end to end, against transformers (eval_transformers.py, the torch venv): a text
 * file's perplexity and token accuracy over transformers' perplexity-guide windows (stride below
 * and equal to the context) within 1e-4 relative; multiple-choice acc/acc_norm and loglikelihood
 * acc/perplexity as lm-eval computes them from transformers' log-probabilities; --workers 2 gives
 * one process's figures; --compare sets two models side by side; chat data is scored on its learned
 * tokens only; generate-until counts exact matches; a malformed task file is refused by line.
 * The transformers comparisons skip without a Python that has it, except under CI with the venv.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { corpusFiles } from '../../src/data/corpus_files.js';
import { chatTokens } from '../../src/data/chat_tokens.js';
import { readChatExamples } from '../../src/data/chat_examples.js';
import { cachedTokens, tokenCachePath } from '../../src/data/token_cache.js';
import { makeTokenizer } from '../../src/data/tokenizer.js';
import { generate } from '../../src/generate/generate.js';
import { encodePair } from '../../src/eval/tasks.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import type { LlamaSpec } from '../../src/nn/models/index.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';
import { findPython } from '../helpers/python.js';
import { randomModel } from '../generate/families.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/eval/eval_transformers.py');
const VENV = '/opt/torchvenv/bin/python';
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, VENV], ['torch', 'transformers']);
if (!PYTHON && process.env.CI === 'true' && existsSync(VENV)) throw new Error(`${VENV} exists but has no torch and transformers`);
const SKIP = PYTHON ? false : 'no Python with torch and transformers (set SMOLCLUSTER_PYTHON or build /opt/torchvenv)';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 260, context: 32, layers: 2, width: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};
const bytes = makeTokenizer('bytes');
const WORDS = ['the', 'cat', 'sat', 'on', 'mat', 'dog', 'ran', 'far'];
const MULTIPLE_CHOICE = [
  { context: 'the cat sat on the', choices: ['mat', 'dog', 'far away'], answer: 0 },
  { context: 'the dog ', choices: ['ran', 'sat', 'on'], answer: 'sat' },
  { context: 'on', choices: ['the mat', 'a cat'], answer: 1 },
  { context: 'ran', choices: ['cat', 'dog'], answer: 0 },
  { context: 'far', choices: [' far', ' ran', ' the'], answer: 2, target_delimiter: '' },
];
const LOGLIKELIHOOD = [
  { context: 'the cat', continuation: ' sat' },
  { context: 'dog ', continuation: 'ran far' },
  { context: 'mat', continuation: ' on the mat' },
];

let dir = '';
let env: Record<string, string> = {};
before(() => {
  dir = tempDir('eval-cli');
  env = { SMOLCLUSTER_TOKEN_CACHE: join(dir, 'tokens') };
  saveFolder(join(dir, 'a'), randomModel(SPEC, 3), SPEC);
  saveFolder(join(dir, 'b'), randomModel(SPEC, 8), SPEC);
  let seed = 7;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  writeFileSync(join(dir, 'corpus.txt'), Array.from({ length: 60 }, () => WORDS[next() % WORDS.length]).join(' '));
  writeJsonl('mc.jsonl', MULTIPLE_CHOICE);
  writeJsonl('ll.jsonl', LOGLIKELIHOOD);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function writeJsonl(name: string, rows: readonly object[]): string {
  writeFileSync(join(dir, name), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return name;
}

interface Figures {
  data?: { file: string; loss: number; perplexity: number; tokenAccuracy: number; tokens: number; tokensPerSecond: number; kind: string };
  tasks: Record<string, number | string>[];
}

async function evalJson(args: string[]): Promise<{ model: Figures; compare?: Figures }> {
  const r = await runCli(['eval', '--tokenizer', 'bytes', '--threads', '1', ...args, '--json'], { cwd: dir, env, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { model: Figures; compare?: Figures };
}

function python(mode: 'perplexity' | 'pairs', input: unknown, ...args: number[]): unknown {
  const file = join(dir, `${mode}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(input));
  const r = spawnSync(PYTHON!, [SCRIPT, mode, join(dir, 'a'), file, ...args.map(String)], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `eval_transformers.py ${mode}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

/** The corpus's token stream, as eval reads it (the token file training builds). */
function corpusIds(): number[] {
  const files = corpusFiles(join(dir, 'corpus.txt'));
  const documents = { textField: 'text', eosText: bytes.eosText };
  const file = cachedTokens(tokenCachePath(join(dir, 'tokens'), files, bytes, documents), files, bytes, documents);
  const ids = new Int32Array(file.tokens);
  file.read(0, ids);
  file.close();
  return [...ids];
}

function relative(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

describe('smolcluster eval', { timeout: 600_000 }, () => {
  for (const [context, stride] of [[32, 8], [32, 32], [16, 5]]) {
    it(`a text file's perplexity and token accuracy equal transformers' (context ${context}, stride ${stride})`, { skip: SKIP }, async () => {
      const ours = (await evalJson(['--model', 'a', '--data-file', 'corpus.txt', '--context', String(context), '--stride', String(stride)])).model.data!;
      const ref = python('perplexity', corpusIds(), context, stride) as { nll: number; tokens: number; correct: number };
      assert.equal(ours.kind, 'text');
      assert.equal(ours.tokens, ref.tokens, 'scored tokens');
      assert.ok(relative(ours.perplexity, Math.exp(ref.nll / ref.tokens)) < 1e-4, `perplexity ${ours.perplexity} vs transformers ${Math.exp(ref.nll / ref.tokens)}`);
      assert.ok(relative(ours.loss, ref.nll / ref.tokens) < 1e-4);
      assert.equal(ours.tokenAccuracy, ref.correct / ref.tokens);
      assert.ok(ours.tokensPerSecond > 0);
    });
  }

  it('multiple-choice and loglikelihood tasks score as lm-eval does over transformers\' log-probabilities', { skip: SKIP }, async () => {
    const ours = (await evalJson(['--model', 'a', '--task', 'mc.jsonl', '--task', 'll.jsonl'])).model.tasks;
    const choiceRows = MULTIPLE_CHOICE.flatMap((d) => d.choices.map((c) => encodePair(bytes, d.context, (d.target_delimiter ?? ' ') + c)));
    const scored = python('pairs', choiceRows.map((p) => [[...p.context], [...p.continuation]])) as [number, boolean][];
    let acc = 0;
    let accNorm = 0;
    let at = 0;
    for (const d of MULTIPLE_CHOICE) {
      const lls = scored.slice(at, at + d.choices.length).map(([ll]) => ll);
      at += d.choices.length;
      const gold = typeof d.answer === 'number' ? d.answer : d.choices.indexOf(d.answer);
      if (lls.indexOf(Math.max(...lls)) === gold) acc++;
      const normed = lls.map((ll, i) => ll / d.choices[i].length);
      if (normed.indexOf(Math.max(...normed)) === gold) accNorm++;
    }
    assert.deepEqual(ours[0], { file: 'mc.jsonl', kind: 'multiple-choice', acc: acc / 5, acc_norm: accNorm / 5, docs: 5 });
    const pairs = python('pairs', LOGLIKELIHOOD.map((d) => encodePair(bytes, d.context, d.continuation)).map((p) => [[...p.context], [...p.continuation]])) as [number, boolean][];
    const meanLl = pairs.reduce((s, [ll]) => s + ll, 0) / pairs.length;
    assert.equal(ours[1].kind, 'loglikelihood');
    assert.equal(ours[1].acc, pairs.filter(([, greedy]) => greedy).length / pairs.length);
    assert.ok(relative(ours[1].perplexity as number, Math.exp(-meanLl)) < 1e-4, `perplexity ${ours[1].perplexity} vs ${Math.exp(-meanLl)}`);
  });

  it('--workers 2 splits the windows and documents and gives one process\'s figures', async () => {
    const args = ['--model', 'a', '--data-file', 'corpus.txt', '--context', '16', '--stride', '8', '--task', 'mc.jsonl', '--task', 'll.jsonl'];
    const one = (await evalJson(args)).model;
    const two = (await evalJson([...args, '--workers', '2'])).model;
    assert.equal(two.data!.tokens, one.data!.tokens);
    assert.equal(two.data!.tokenAccuracy, one.data!.tokenAccuracy);
    // A shard batches other rows together: padded to other lengths, the products round differently (float32).
    assert.ok(relative(two.data!.loss, one.data!.loss) < 1e-6, `${two.data!.loss} vs ${one.data!.loss}`);
    assert.deepEqual(two.tasks.map((t) => t.acc), one.tasks.map((t) => t.acc));
    assert.equal(two.tasks[0].acc_norm, one.tasks[0].acc_norm);
    assert.ok(relative(two.tasks[1].perplexity as number, one.tasks[1].perplexity as number) < 1e-6);
  });

  it('--compare scores a second model on the same file and tasks, side by side with the change', async () => {
    const both = await evalJson(['--model', 'a', '--compare', 'b', '--data-file', 'corpus.txt', '--task', 'mc.jsonl']);
    const alone = (await evalJson(['--model', 'b', '--data-file', 'corpus.txt', '--task', 'mc.jsonl'])).model;
    assert.equal(both.compare!.data!.loss, alone.data!.loss);
    assert.notEqual(both.compare!.data!.loss, both.model.data!.loss);
    const table = await runCli(['eval', '--tokenizer', 'bytes', '--threads', '1', '--model', 'a', '--compare', 'b', '--data-file', 'corpus.txt'], { cwd: dir, env });
    assert.equal(table.code, 0, table.stderr);
    const change = both.compare!.data!.loss - both.model.data!.loss;
    const line = table.stdout.split('\n').find((l) => l.trim().startsWith('loss'));
    assert.ok(line, table.stdout);
    assert.deepEqual(line.trim().split(/\s+/), ['loss', both.model.data!.loss.toFixed(4), alone.data!.loss.toFixed(4), `${change >= 0 ? '+' : '-'}${Math.abs(change).toFixed(4)}`]);
  });

  it('chat data is scored on the learned tokens only, as training masks them', async () => {
    const file = writeJsonl('chat.jsonl', [
      { prompt: 'the cat sat on', completion: ' the mat' },
      { prompt: 'dog', completion: ' ran far' },
    ]);
    const ours = (await evalJson(['--model', 'a', '--data-file', file])).model.data!;
    const learned = readChatExamples(join(dir, file)).map((e) => chatTokens(e, null, bytes, 'x').learned);
    assert.equal(ours.kind, 'chat');
    assert.equal(ours.tokens, learned.reduce((n, l) => n + l.slice(1).reduce((a, b) => a + b, 0), 0));
    assert.equal(ours.tokens, ' the mat'.length + ' ran far'.length);
  });

  it('a Parquet file scores as the JSONL of the same documents (--text-field names the column)', async () => {
    const parquet = fileURLToPath(new URL('../../../test/data/fixtures/body.zstd.parquet', import.meta.url));
    writeJsonl('same.jsonl', ['alpha', 'béta', '日本', 'delta', 'last one'].map((text) => ({ text })));
    const fromParquet = (await evalJson(['--model', 'a', '--data-file', parquet, '--text-field', 'body', '--context', '8'])).model.data!;
    const fromJsonl = (await evalJson(['--model', 'a', '--data-file', 'same.jsonl', '--context', '8'])).model.data!;
    assert.deepEqual({ ...fromParquet, tokensPerSecond: 0 }, { ...fromJsonl, tokensPerSecond: 0, file: fromParquet.file });
    assert.ok(fromParquet.tokens > 20);
  });

  it('generate-until counts greedy replies that match the answer (after the regex where given)', async () => {
    const { loadGenerator } = await import('../../src/generate/load_generator.js');
    const g = await loadGenerator(join(dir, 'a'), { tokenizer: 'bytes' });
    const reply = await generate(g.model, [...bytes.encode('the cat')], { maxNewTokens: 6, decode: (ids) => bytes.decode(ids) });
    const file = writeJsonl('gen.jsonl', [
      { context: 'the cat', answer: reply.text!.trim(), max_tokens: 6 },
      { context: 'the cat', answer: 'certainly not this', max_tokens: 6 },
      { context: 'the cat', answer: reply.text!.trim().slice(0, 1), regex: '^\\s*(.)', max_tokens: 6 },
    ]);
    const ours = (await evalJson(['--model', 'a', '--task', file])).model.tasks[0];
    assert.deepEqual(ours, { file, kind: 'generate-until', exact_match: 2 / 3, docs: 3 });
  });

  it('a malformed task file, or nothing to score, is refused naming the file and line or the flag', async () => {
    const file = writeJsonl('bad.jsonl', [{ context: 'a', choices: ['x', 'y'], answer: 0 }, { context: 'b', choices: ['x'], answer: 0 }]);
    const bad = await runCli(['eval', '--model', 'a', '--tokenizer', 'bytes', '--task', file], { cwd: dir, env });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /bad\.jsonl: line 2: "choices" must be a list of at least two strings/);
    const nothing = await runCli(['eval', '--model', 'a', '--tokenizer', 'bytes'], { cwd: dir, env });
    assert.notEqual(nothing.code, 0);
    assert.match(nothing.stderr, /--data-file/);
    const wide = await runCli(['eval', '--model', 'a', '--tokenizer', 'bytes', '--data-file', 'corpus.txt', '--context', '64'], { cwd: dir, env });
    assert.notEqual(wide.code, 0);
    assert.match(wide.stderr, /--context: 64 is more than the model's 32 positions/);
  });
});
