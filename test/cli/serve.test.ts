/**
 * `smolcluster serve`'s command logic in-process (runServe, with the flags parsed from its option
 * table): `--follow experiments/RUN` serves the run's newest saved model and, when training saves
 * a newer one, serves that; `--lora-modules NAME=DIR` serves an adapter by name beside the base;
 * `--threads` sets the compute threads as generate's does;
 * --help lists every flag; bad flag combinations are refused by name.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { type ServeFlags, runServe, serveCommand } from '../../src/cli/serve.js';
import { addOptions } from '../../src/cli/option_table.js';
import { longFlag } from '../../src/config/options/index.js';
import { SERVE_OPTIONS } from '../../src/config/options/serve.js';
import { makeTokenizer } from '../../src/data/tokenizer.js';
import { generate } from '../../src/generate/generate.js';
import { saveModel } from '../../src/nn/checkpoint.js';
import { applyLora, mergeAdapterInto, saveAdapter } from '../../src/nn/lora/index.js';
import type { LlamaSpec, ModelSpec } from '../../src/nn/models/index.js';
import type { Module } from '../../src/nn/module.js';
import { randomModel } from '../generate/families.js';
import { backend } from '../../src/tensor/dispatch.js';
import { tempDir } from '../helpers/cluster.js';

const SPEC: ModelSpec = { type: 'gpt2', vocabSize: 256, context: 48, layers: 1, width: 16, heads: 2, dropout: 0 };
const bytes = makeTokenizer('bytes');

function flags(args: string[]): ServeFlags {
  const cmd = addOptions(new Command('serve'), SERVE_OPTIONS).exitOverride();
  cmd.parse(args, { from: 'user' });
  return cmd.opts() as ServeFlags;
}

async function complete(url: string, prompt: string, model = 'run1'): Promise<string> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(10_000),
    body: JSON.stringify({ model, prompt, max_tokens: 6, temperature: 0 }),
  });
  return ((await res.json()) as { choices: { text: string }[] }).choices[0].text;
}

/** Saves a model of SPEC (seeded) into the run and records it in events.jsonl at `step`; returns its greedy reply to 'ab'. */
async function saveStep(run: string, seed: number, step: number): Promise<string> {
  const model = randomModel(SPEC, seed);
  const file = join(run, 'model.smol'); // --save rewrites one file: the step tells the versions apart
  await saveModel(file, model, SPEC);
  appendFileSync(join(run, 'events.jsonl'), `${JSON.stringify({ kind: 'model_saved', file, step })}\n`);
  return bytes.decode((await generate(model, Array.from(bytes.encode('ab')), { maxNewTokens: 6 })).ids);
}

describe('smolcluster serve', { timeout: 60_000 }, () => {
  it('--follow serves a run\'s newest model and reloads it when a newer one is saved (over the same file)', async () => {
    const run = join(tempDir('serve-follow'), 'experiments', 'run1');
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'config.json'), JSON.stringify({ schema: 'smolcluster-config', tokenizer: 'bytes' }));
    const first = await saveStep(run, 1, 1);
    let stop!: () => void;
    let url!: string;
    const serving = runServe(flags(['--follow', run, '--follow-every', '0.1', '--port', '0']), new Promise<void>((r) => (stop = r)), (u) => (url = u));
    try {
      const deadline = Date.now() + 20_000;
      while (!url && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await complete(url, 'ab'), first);
      const second = await saveStep(run, 2, 2);
      assert.notEqual(second, first);
      let reply = first;
      while (reply !== second && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        reply = await complete(url, 'ab');
      }
      assert.equal(reply, second);
    } finally {
      stop();
      await serving;
    }
  });

  it('--lora-modules NAME=DIR serves adapters by name over the --model base, unmerged; refused over --stages', async () => {
    const spec: LlamaSpec = {
      type: 'llama', modelType: 'llama', vocabSize: 256, context: 48, layers: 1, width: 16, intermediate: 32, heads: 2, kvHeads: 1, headDim: 8,
      ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
    };
    const dir = tempDir('serve-lora-modules');
    const file = join(dir, 'base.smol');
    await saveModel(file, randomModel(spec, 2), spec);
    const tuned = randomModel(spec, 2) as unknown as Module;
    applyLora(tuned, { rank: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'down_proj'], seed: 3 });
    for (const [n, p] of tuned.namedTrainable()) if (n.endsWith('lora_B.weight')) p.storage.write(Float32Array.from(p.values() as Float32Array, (_, i) => Math.sin(i)));
    await saveAdapter(join(dir, 'adapter'), tuned, spec);
    const merged = randomModel(spec, 2);
    await mergeAdapterInto(join(dir, 'adapter'), merged as unknown as Module);
    let stop!: () => void;
    let url!: string;
    // --threads as generate takes it: a count other than the one set now.
    const threads = backend().getThreads() === 1 ? 2 : 1;
    const serving = runServe(flags(['--model', file, '--model-name', 'base', '--tokenizer', 'bytes', '--lora-modules', `tuned=${join(dir, 'adapter')}`, '--port', '0', '--threads', String(threads)]), new Promise<void>((r) => (stop = r)), (u) => (url = u));
    try {
      const deadline = Date.now() + 20_000;
      while (!url && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const listed = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
      assert.deepEqual(listed.data.map((m) => m.id), ['base', 'tuned']);
      assert.equal(backend().getThreads(), threads, '--threads');
      const want = bytes.decode((await generate(merged, Array.from(bytes.encode('ab')), { maxNewTokens: 6 })).ids);
      assert.equal(await complete(url, 'ab', 'tuned'), want);
    } finally {
      stop();
      await serving;
    }
    await assert.rejects(runServe(flags(['--model', file, '--stages', '2', '--lora-modules', 'x=y']), Promise.resolve()), /--lora-modules\): adapters served by name run in one process, not over --stages/);
  });

  it('refuses --model with --follow, and neither; --help lists every flag', async () => {
    await assert.rejects(runServe(flags([]), Promise.resolve()), /give --model SRC \(or --follow experiments\/RUN\)/);
    await assert.rejects(runServe(flags(['--model', 'a', '--follow', 'b']), Promise.resolve()), /--model or --follow, not both/);
    const help = serveCommand().helpInformation().replace(/\s+/g, ' ');
    for (const [name, spec] of Object.entries(SERVE_OPTIONS)) assert.ok(help.includes(longFlag(name)) && help.includes(spec.help.replace(/\s+/g, ' ')), name);
  });
});
