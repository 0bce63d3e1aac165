/**
 * `generate --stages 2` and `serve --stages 3` with real stage processes on 127.0.0.1: replies equal
 * one process's (with a PEFT adapter too); a stage killed with SIGKILL while a request is in flight fails that request with a 503 naming the stage,
 * its rank and host, /v1/models keeps answering (/health says 503 with the stage), and new completions are refused at once with the
 * same OpenAI error object (never a hang).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { type ServeFlags, runServe } from '../../../src/cli/serve.js';
import { addOptions } from '../../../src/cli/option_table.js';
import { SERVE_OPTIONS } from '../../../src/config/options/serve.js';
import { makeTokenizer } from '../../../src/data/tokenizer.js';
import { generate } from '../../../src/generate/generate.js';
import { saveSafetensors } from '../../../src/nn/interchange/model_io.js';
import type { ModelSpec } from '../../../src/nn/models/index.js';
import { applyLora, defaultLoraTargets, loraLayers, saveAdapter } from '../../../src/nn/lora/index.js';
import { Rng } from '../../../src/util/rng.js';
import { randomModel } from '../../generate/families.js';
import { CLI } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/cluster.js';

const SPEC: ModelSpec = { type: 'gpt2', vocabSize: 256, context: 64, layers: 3, width: 32, heads: 4, dropout: 0 };
const bytes = makeTokenizer('bytes');

function flags(args: string[]): ServeFlags {
  const cmd = addOptions(new Command('serve'), SERVE_OPTIONS).exitOverride();
  cmd.parse(args, { from: 'user' });
  return cmd.opts() as ServeFlags;
}

type ApiReply = { status: number; json: { choices?: { text: string }[]; error?: { message: string; code: string | null; type: string } } };

async function complete(url: string, prompt: string, maxTokens: number): Promise<ApiReply> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(20_000),
    body: JSON.stringify({ model: 'tiny', prompt, max_tokens: maxTokens, temperature: 0 }),
  });
  return { status: res.status, json: await res.json() as ApiReply['json'] };
}

/** The pid of the stage process of `rank` this test process started (through the server it runs). */
function stagePid(rank: number): number {
  const lines = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' }).split('\n');
  const line = lines.find((l) => / stage .*--rank (\d+) /.test(l) && l.includes(`--rank ${rank} `));
  assert.ok(line, `stage ${rank}'s process is running:\n${lines.join('\n')}`);
  return Number(line.trim().split(/\s+/)[0]);
}

describe('generate --stages 2', { timeout: 60_000 }, () => {
  it('prints what one process prints, the model split over two processes', async () => {
    const file = join(tempDir('generate-stages'), 'tiny.safetensors');
    saveSafetensors(file, randomModel(SPEC, 22), SPEC);
    const run = (extra: string[]): Promise<{ stdout: string; stderr: string }> => new Promise((resolve, reject) => execFile(process.execPath,
      [CLI, 'generate', '--model', file, '--tokenizer', 'bytes', '--prompt', 'ab', '--max-new-tokens', '6', ...extra],
      { timeout: 45_000 }, (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve({ stdout, stderr }))));
    const [alone, split] = await Promise.all([run([]), run(['--stages', '2'])]);
    assert.equal(split.stdout, alone.stdout);
    assert.match(split.stderr, /stage 1 \(rank 1 at 127\.0\.0\.1:\d+\): layers \d+\.\.\d+/);
    assert.match(split.stderr, /6 tokens in/);
  });

  it('with --adapter: prints what one process prints with the same PEFT adapter merged (the stage process merges its own layers\')', async () => {
    const dir = tempDir('generate-stages-adapter');
    const file = join(dir, 'tiny.safetensors');
    saveSafetensors(file, randomModel(SPEC, 22), SPEC);
    // An adapter whose B is far from PEFT's zeros: it changes the tokens.
    const tuned = randomModel(SPEC, 22);
    applyLora(tuned, { rank: 4, alpha: 8, dropout: 0, targets: defaultLoraTargets(SPEC), seed: 3 });
    const rng = new Rng(9);
    for (const [, l] of loraLayers(tuned)) l.lora_B.weight.storage.write(Float32Array.from({ length: l.lora_B.weight.size }, () => rng.normal() * 4));
    await saveAdapter(join(dir, 'adapter'), tuned, SPEC);
    const run = (extra: string[]): Promise<string> => new Promise((resolve, reject) => execFile(process.execPath,
      [CLI, 'generate', '--model', file, '--tokenizer', 'bytes', '--prompt', 'ab', '--max-new-tokens', '6', ...extra],
      { timeout: 45_000 }, (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout))));
    const [plain, alone, split] = await Promise.all([run([]), run(['--adapter', join(dir, 'adapter')]), run(['--adapter', join(dir, 'adapter'), '--stages', '2'])]);
    assert.equal(split, alone);
    assert.notEqual(alone, plain, 'the adapter changes the tokens');
  });
});

describe('serve --stages 3: a lost stage', { timeout: 90_000 }, () => {
  it('fails the request in flight naming the stage, keeps answering /v1/models, and refuses new completions with a 503', async () => {
    const model = randomModel(SPEC, 21);
    const file = join(tempDir('serve-stages'), 'tiny.safetensors');
    saveSafetensors(file, model, SPEC);
    let stop!: () => void;
    let url = '';
    const serving = runServe(flags(['--model', file, '--tokenizer', 'bytes', '--model-name', 'tiny', '--stages', '3', '--stage-timeout', '15', '--port', '0']), new Promise<void>((r) => (stop = r)), (u) => (url = u));
    serving.catch(() => {});
    const pids: number[] = [];
    try {
      for (const deadline = Date.now() + 60_000; !url && Date.now() < deadline;) await Promise.race([serving, new Promise((r) => setTimeout(r, 50))]);
      assert.ok(url, 'the server listens');
      const alone = bytes.decode((await generate(model, Array.from(bytes.encode('ab')), { maxNewTokens: 6 })).ids);
      const ok = await complete(url, 'ab', 6);
      assert.equal(ok.status, 200);
      assert.equal(ok.json.choices![0].text, alone, 'the pipeline replies as one process does');
      assert.equal((await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) })).status, 200);

      pids.push(stagePid(1), stagePid(2));
      // Stage 2 paused: the next request is in flight in the pipe when stage 1 dies.
      process.kill(pids[1], 'SIGSTOP');
      const inFlight = complete(url, 'cd', 8);
      await new Promise((r) => setTimeout(r, 300));
      const killedAt = Date.now();
      process.kill(pids[0], 'SIGKILL');
      const failed = await inFlight;
      assert.equal(failed.status, 503);
      assert.equal(failed.json.error?.code, 'stage_lost');
      assert.match(failed.json.error!.message, /pipeline stage 1 \(rank 1 at 127\.0\.0\.1:\d+\) was lost/);
      assert.ok(Date.now() - killedAt < 10_000, 'the loss is seen at once, not at the step\'s deadline');

      const models = await fetch(`${url}/v1/models`, { signal: AbortSignal.timeout(5000) });
      assert.equal(models.status, 200);
      assert.deepEqual(((await models.json()) as { data: { id: string }[] }).data.map((m) => m.id), ['tiny']);

      const health = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
      assert.equal(health.status, 503);
      assert.match(((await health.json()) as { error: string }).error, /pipeline stage 1 \(rank 1 at/);

      const t0 = Date.now();
      const refused = await complete(url, 'ef', 4);
      assert.equal(refused.status, 503);
      assert.match(refused.json.error!.message, /pipeline stage 1 \(rank 1 at 127\.0\.0\.1:\d+\) was lost/);
      assert.ok(Date.now() - t0 < 5000, 'a new completion is refused at once');
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      stop();
      await serving.catch(() => {});
    }
  });
});
