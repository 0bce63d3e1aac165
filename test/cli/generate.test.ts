/**
 * The generation commands end to end, each one process: `train --sample-every` prints samples and
 * writes them to metrics.jsonl, `generate --model <the run's folder> --prompt -` streams what the
 * library generates from the same weights, and `chat` driven through stdin (/reset, /exit) answers
 * with the model's chat template, as the library's Conversation does.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Conversation } from '../../src/generate/conversation.js';
import { loadGenerator } from '../../src/generate/load_generator.js';
import { promptIds, streamReply } from '../../src/generate/reply.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import type { ModelSpec } from '../../src/nn/models/index.js';
import { type CliResult, CLI } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';
import { SMOLLM2_TEMPLATE, writeTokenizerFolder } from '../generate/chat_template_fixtures.js';
import { randomModel } from '../generate/families.js';
import { heldByGenerator } from '../helpers/rows8.js';

let dir = '';
before(() => {
  dir = tempDir('generate-cli');
  writeFileSync(join(dir, 'corpus.txt'), Array.from({ length: 40 }, (_, i) => `the cat ${i % 3 ? 'sat on the mat' : 'ran to the park'}.`).join('\n'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The CLI with `input` on its stdin. */
function cli(args: string[], input = ''): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, SMOLCLUSTER_TOKEN_CACHE: join(dir, 'tokens') } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

describe('generate and chat from the command line', { timeout: 180_000 }, () => {
  it('train --sample-every prints samples and records them; generate streams the run\'s model as the library does', async () => {
    const train = await cli([
      'train', '--model', 'gpt2-tiny', '--dataset', 'text', '--data-file', 'corpus.txt', '--tokenizer', 'bytes', '--context', '32',
      '--batch-size', '4', '--max-steps', '6', '--threads', '1', '--sample-every', '3', '--sample-prompt', 'the cat', '--sample-tokens', '8',
      '--name', 'run', '--save', 'run.smol',
    ]);
    assert.equal(train.code, 0, train.stderr);
    const printed = `${train.stdout}${train.stderr}`;
    assert.match(printed, /step 3 sample: "the cat/);
    assert.match(printed, /step 6 sample: "the cat/);
    const samples = readFileSync(join(dir, 'experiments', 'run', 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"kind":"sample"')).map((l) => JSON.parse(l) as { step: number; prompt: string; text: string });
    assert.deepEqual(samples.map((s) => [s.step, s.prompt]), [[3, 'the cat'], [6, 'the cat']]);
    assert.ok(samples.every((s) => s.text.length > 0));

    const run = join(dir, 'experiments', 'run');
    const gen = await cli(['generate', '--model', run, '--prompt', '-', '--max-new-tokens', '12'], 'the cat');
    assert.equal(gen.code, 0, gen.stderr);
    const g = await loadGenerator(run);
    assert.equal(g.weights, join(dir, 'run.smol'));
    const want = await streamReply(g, promptIds(g.tokenizer, 'the cat'), { maxNewTokens: 12 }, () => {});
    assert.equal(gen.stdout, `${want.text}\n`);
    assert.equal(samples[1].text, (await streamReply(g, promptIds(g.tokenizer, 'the cat'), { maxNewTokens: 8 }, () => {})).text, 'the last sample is the saved model\'s');
    assert.match(gen.stderr, /tokenizer bytes/);
    assert.match(gen.stderr, /smolcluster: 12 tokens in [\d.]+ s \([\d.]+ tok\/s decoding; prompt 7 tokens in [\d.]+ s\), stop: length/);
  });

  it('chat: the template each turn, replies streamed, /reset forgets, /exit leaves', async () => {
    const spec: ModelSpec = { type: 'gpt2', vocabSize: 7, context: 64, layers: 1, width: 16, heads: 2, dropout: 0 };
    const folder = writeTokenizerFolder(join(dir, 'chatty'), { eos_token: '<|endoftext|>', chat_template: SMOLLM2_TEMPLATE });
    // A seed whose two replies say something, and differently: the second turn sees the first.
    saveFolder(folder, randomModel(spec, 3), spec);
    const chat = await cli(['chat', '--model', folder, '--system', 'Be brief.', '--max-new-tokens', '6'], 'hello\nworld\n/reset\nhello\n/exit\nnever read\n');
    assert.equal(chat.code, 0, chat.stderr);
    // The same conversation through the library.
    const g = await loadGenerator(folder);
    const c = new Conversation(g, { system: 'Be brief.' });
    const replies: string[] = [];
    for (const text of ['hello', 'world']) {
      const r = await streamReply(g, c.ask(text), { maxNewTokens: 6, ...c.ends }, () => {});
      c.answer(r.text);
      replies.push(r.text);
    }
    assert.equal(chat.stdout, `${replies[0]}\n${replies[1]}\n${replies[0]}\n`);
    assert.ok(replies[0].length > 0 && replies[1].length > 0, `the replies say something: ${JSON.stringify(replies)}`);
    assert.match(chat.stderr, /conversation cleared/);
    assert.equal(chat.stderr.match(/stop: (eos|length)/g)?.length, 3);
    assert.ok(!chat.stdout.includes('<|im_end|>'));
    const none = await cli(['chat', '--model', join(dir, 'run.smol')], 'hi\n');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /has no chat template .*pass --no-template/);
  });

  it('generate --quantize holds a Llama folder\'s matrices quantized and streams what the library makes of it; a GPT-2 is refused', async () => {
    const spec: ModelSpec = {
      type: 'llama', modelType: 'qwen2', vocabSize: 7, context: 64, layers: 2, width: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16,
      ropeTheta: 1e6, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: true, qkvBias: true, qkNorm: false, dropout: 0,
    };
    const folder = writeTokenizerFolder(join(dir, 'qwen-tiny'), { eos_token: '<|endoftext|>' });
    saveFolder(folder, randomModel(spec, 5), spec);
    const gen = await cli(['generate', '--model', folder, '--quantize', 'q8_0', '--prompt', 'hello', '--max-new-tokens', '6']);
    assert.equal(gen.code, 0, gen.stderr);
    const g = await loadGenerator(folder, { quantize: 'q8_0' });
    assert.equal(g.quantized?.scheme, 'q8_0');
    const params = (g.model as unknown as { namedParameters(): [string, { dtype: string }][] }).namedParameters();
    assert.equal(params.find(([n]) => n === 'model.layers.0.mlp.up_proj.weight')?.[1].dtype, heldByGenerator('q8_0'));
    const want = await streamReply(g, promptIds(g.tokenizer, 'hello'), { maxNewTokens: 6 }, () => {});
    assert.equal(gen.stdout, `${want.text}\n`);
    assert.match(gen.stderr, /weights q8_0, 0\.\d\d MB \(0\.\d\d MB in float32\)/);
    const gpt2 = await cli(['generate', '--model', join(dir, 'run.smol'), '--quantize', 'q4_k_m', '--prompt', 'x']);
    assert.equal(gpt2.code, 1);
    assert.match(gpt2.stderr, /holds a gpt2 model; --quantize takes the Llama family/);
  });
});
