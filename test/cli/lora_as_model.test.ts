/**
 * A LoRA run and a PEFT adapter folder as `--model`: the run's folder (its saved adapter folder, or
 * without one its newest checkpoint, which holds the adapters only) and the adapter folder itself
 * load as the base plus the adapters, generating what `--model BASE --adapter DIR` generates (the
 * saved folder over pipeline stages too, and once `export` has merged it into a plain folder);
 * `chat` over the run answers as over BASE --adapter DIR; `serve --follow` of a LoRA run started before it has a checkpoint waits, serves the first, and
 * reloads the adapters when the next lands. Each command is its own process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel } from '../../src/nn/models/index.js';
import { CLI, type CliResult, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';

// 256 token ids: the bytes tokenizer, which the vocabulary implies.
const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 256, context: 32, layers: 2, width: 16, intermediate: 24, heads: 4, kvHeads: 2, headDim: 4,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: true, qkvBias: false, qkNorm: false, dropout: 0,
};
const dir = tempDir('lora-as-model');
after(() => rmSync(dir, { recursive: true, force: true }));
saveFolder(join(dir, 'base'), createModel(SPEC, 1), SPEC);

// A large learning rate, so that a few steps of rank-4 adapters change what the model says; --lora-alpha's scale is read back from the run.
const TRAIN = ['train', '--init', 'base', '--dataset', 'synthetic_text', '--context', '16', '--eval-every', '0', '--threads', '1',
  '--lora-rank', '4', '--lora-alpha', '16', '--lr', '0.05', '--batch-size', '4', '--checkpoint-every', '3'];
// Sampled with a seed: every logit counts, so any difference in the weights shows.
const SAMPLING = { prompt: 'the', max_tokens: 12, temperature: 1, seed: 7 };

async function train(...args: string[]): Promise<void> {
  const r = await runCli([...TRAIN, ...args], { cwd: dir, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
}

async function generate(model: string, extra: string[] = [], cwd = dir): Promise<CliResult> {
  const s = SAMPLING;
  return runCli(['generate', '--model', model, '--prompt', s.prompt, '--max-new-tokens', String(s.max_tokens), '--temperature', String(s.temperature), '--seed', String(s.seed), ...extra], { cwd });
}

async function generated(model: string, extra: string[] = [], cwd = dir): Promise<{ text: string; loaded: string }> {
  const r = await generate(model, extra, cwd);
  assert.equal(r.code, 0, r.stderr);
  return { text: r.stdout, loaded: r.stderr.split('\n')[0] };
}

describe('LoRA runs and adapter folders as models', { timeout: 240_000 }, () => {
  it('a LoRA run\'s folder (saved adapter, or checkpoint) and an adapter folder generate what --model BASE --adapter DIR does', async () => {
    await train('--name', 'lora', '--max-steps', '6', '--save', 'adapter');
    const want = await generated('base', ['--adapter', 'adapter']);
    assert.notEqual((await generated('base')).text, want.text, 'the adapters change the text');

    const run = await generated('experiments/lora');
    assert.equal(run.text, want.text);
    assert.match(run.loaded, /smolcluster: adapter on base \(llama/);
    // chat over the run: the same replies as over BASE --adapter DIR (a plain transcript: the base has no template).
    const chatArgs = ['--no-template', '--max-new-tokens', '6', '--temperature', '1', '--seed', '7'];
    const chatRun = await chat(['--model', 'experiments/lora', ...chatArgs], 'hello\n');
    assert.ok(chatRun.length > 1, 'a reply');
    assert.equal(chatRun, await chat(['--model', 'base', '--adapter', 'adapter', ...chatArgs], 'hello\n'));
    const folder = await generated('adapter');
    assert.equal(folder.text, want.text);
    assert.match(folder.loaded, /smolcluster: adapter on base \(llama/);

    // export writes the run as a plain folder: the adapters merged into its --init.
    const exported = await runCli(['export', '--model', 'experiments/lora', '--out', 'exported'], { cwd: dir });
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal((await generated('exported')).text, want.text);

    // Over pipeline stages the saved folder travels to each stage as --adapter.
    assert.equal((await generated('experiments/lora', ['--stages', '2'])).text, want.text);

    // Without the saved folder, the run's newest checkpoint (step 6: the same adapters) on its --init.
    renameSync(join(dir, 'adapter'), join(dir, 'moved'));
    const checkpoint = await generated('experiments/lora');
    assert.equal(checkpoint.text, want.text);
    assert.match(checkpoint.loaded, /ckpt-00000006\.smolckpt on base \(llama/);
    const staged = await generate('experiments/lora', ['--stages', '2']);
    assert.equal(staged.code, 1);
    assert.match(staged.stderr, /ckpt-00000006\.smolckpt: is a LoRA run's checkpoint, which runs in one process/);
    const bare = await generate('experiments/lora/checkpoints/ckpt-00000006.smolckpt');
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /holds LoRA adapters only \(a LoRA run's checkpoint\): give the run's folder as --model/);

    // base_model_name_or_path relative to the adapter folder (run from elsewhere).
    const nested = join(dir, 'elsewhere', 'adapter');
    mkdirSync(join(dir, 'elsewhere'));
    cpSync(join(dir, 'moved'), nested, { recursive: true });
    const config = JSON.parse(readFileSync(join(nested, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(nested, 'adapter_config.json'), JSON.stringify({ ...config, base_model_name_or_path: '../../base' }));
    assert.equal((await generated('adapter', [], join(dir, 'elsewhere'))).text, want.text);

    // A hub id is not fetched: the message says how to give the base.
    writeFileSync(join(nested, 'adapter_config.json'), JSON.stringify({ ...config, base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M' }));
    const hub = await generate('adapter', [], join(dir, 'elsewhere'));
    assert.equal(hub.code, 1);
    assert.match(hub.stderr, /adapter_config\.json: base_model_name_or_path "HuggingFaceTB\/SmolLM2-135M" is no local model .*pass --model BASE --adapter adapter/);
  });

  it('serve --follow of a LoRA run waits for its first checkpoint, serves it, and reloads the adapters of the next', async () => {
    const serve = spawn(process.execPath, [CLI, 'serve', '--follow', 'experiments/follow', '--follow-every', '0.1', '--host', '127.0.0.1', '--port', '0'], { cwd: dir });
    let stderr = '';
    serve.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((done) => serve.on('close', (code) => done(code)));
    const waitFor = async (pattern: RegExp): Promise<RegExpExecArray> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const m = pattern.exec(stderr);
        if (m) return m;
        assert.ok(Date.now() < deadline, `no ${pattern} in serve's output: ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await waitFor(/--follow: experiments\/follow holds no run yet; waiting for training to write one/);
      await train('--name', 'follow', '--max-steps', '3');
      const url = (await waitFor(/serving follow \(\S+ckpt-00000003\.smolckpt on base\) at (http:\/\/127\.0\.0\.1:\d+)\/v1/))[1];
      const first = await complete(url);
      assert.equal(`${first}\n`, (await generated('experiments/follow')).text);

      await train('--name', 'follow', '--max-steps', '6', '--resume', 'auto');
      await waitFor(/now serving \S+ckpt-00000006\.smolckpt on base/);
      const second = await complete(url);
      assert.equal(`${second}\n`, (await generated('experiments/follow')).text);
      assert.notEqual(second, first, 'three more steps change the text');
    } finally {
      serve.kill('SIGTERM');
      await exited;
    }
  });
});

/** chat's stdout with `input` on its stdin. */
function chat(args: string[], input: string): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, 'chat', ...args], { cwd: dir });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => (code === 0 ? done(stdout) : fail(new Error(`chat exited ${code}: ${stderr}`))));
    child.stdin.end(input);
  });
}

async function complete(url: string): Promise<string> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(20_000),
    body: JSON.stringify({ model: 'follow', ...SAMPLING }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { choices: { text: string }[] }).choices[0].text;
}
