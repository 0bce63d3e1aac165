/**
 * The trainer's rollout pool against real `smolcluster rollout-worker` processes on 127.0.0.1:
 * after a weight sync the workers sample exactly what the trainer samples at those weights (the
 * same seeds, the same kernels), each token's log-probability equal to the trainer's own
 * temperature-scaled log-softmax (tokenLogps, what TRL compares) and tagged with the new version;
 * a worker that stops answering is named when its deadline passes, one killed with SIGKILL is named
 * at once, and their prompts go to the others — then, none left, to the trainer's process, until a
 * worker started by hand joins with the current weights; a request a worker cannot sample is
 * answered with its reason; a socket speaking garbage and a worker holding another token are
 * refused by name. Nothing hangs.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import type { LlamaSpec } from '../../src/nn/models/index.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { completionBatch } from '../../src/rl/completions.js';
import { type Policy, loadPolicy } from '../../src/rl/policy.js';
import type { RolloutPool, WeightSync } from '../../src/rl/remote/pool.js';
import { dialTrainer, rolloutSignature, sendMessage } from '../../src/rl/remote/link.js';
import { openRolloutPool, sampleRemote, syncRolloutPool } from '../../src/rl/remote/sampler.js';
import { RolloutMessage, encodeMessage } from '../../src/rl/remote/wire.js';
import { rolloutSettings } from '../../src/rl/remote/worker.js';
import { type RolloutOptions, sampleCompletions } from '../../src/rl/rollouts.js';
import { tokenLogps } from '../../src/rl/token_logps.js';
import { CLI, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';
import { randomModel } from '../generate/families.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 260, context: 32, layers: 2, width: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};
const TOKEN = 'rollout-test-token-0123456789';
const PROMPTS = [[1, 40, 41], [1, 42, 43, 44], [1, 45], [1, 46, 47], [1, 48, 49, 50, 51], [1, 52]];

let dir = '';
let policy: Policy;
let pool: RolloutPool;
const children: ChildProcess[] = [];
const warnings: string[] = [];

const settings = (o: Partial<RolloutOptions> = {}): RolloutOptions => ({ generations: 3, maxCompletionLength: 8, temperature: 0.8, eosIds: policy.eosIds, seed: 11, ...o });

before(async () => {
  dir = tempDir('rollout-pool');
  saveFolder(join(dir, 'base'), randomModel(SPEC, 3), SPEC);
  policy = loadPolicy(join(dir, 'base'), { seed: 0 }, 'bytes');
  pool = await openRolloutPool({
    workers: 3, host: '127.0.0.1', port: 0, token: TOKEN, startMs: 60_000, requestMs: 4000,
    spawn: (address) => {
      const child = spawn(process.execPath, [CLI, 'rollout-worker', '--connect', address, '--model', join(dir, 'base'), '--tokenizer', 'bytes', '--threads', '1'], {
        env: { ...process.env, SMOLCLUSTER_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.push(child);
      return child;
    },
  }, policy, {}, (m) => warnings.push(m));
});
after(async () => {
  await pool?.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Moves the trainer's weights (as an optimizer step would, by `size`) and sends them as `version`. */
async function step(version: number, size = 0.05): Promise<WeightSync> {
  const arena = policy.model.arena();
  const values = await arena.params.read();
  for (let i = 0; i < values.length; i++) values[i] += size * Math.sin(i * 0.37 + version);
  arena.params.write(values);
  return syncRolloutPool(pool, policy, version);
}

/** The workers' completions equal the trainer's own sampling at its current weights. */
async function assertSameAsLocal(o: RolloutOptions, version: number, workers: number): Promise<void> {
  const remote = await sampleRemote(pool, policy.model, version, PROMPTS, o);
  const local = await sampleCompletions(policy.model, PROMPTS, { ...o, logps: true });
  assert.equal(remote.workers, workers);
  assert.deepEqual(remote.completions.map((c) => c.ids), local.completions.map((c) => c.ids));
  assert.deepEqual(remote.completions.map((c) => c.prompt), local.completions.map((c) => c.prompt));
  assert.ok(remote.completions.every((c) => c.version === version), `versions ${remote.completions.map((c) => c.version).join(',')}`);
  // Each token's log-probability: the trainer's tokenLogps (its forward, divided by T, log-softmaxed) at the same weights.
  const rows = remote.completions.map((c) => ({ prompt: PROMPTS[c.prompt], completion: c.ids }));
  const batch = completionBatch(rows, -1, 0);
  const trainer = noGrad(() => tokenLogps(policy.model, rows.map((r) => r.prompt), batch, o.temperature).logps.values());
  for (const [i, c] of remote.completions.entries()) {
    assert.equal(c.logps!.length, c.ids.length);
    for (const [t, lp] of c.logps!.entries()) assert.ok(Math.abs(lp - trainer[i * batch.width + t]) < 2e-5, `completion ${i} token ${t}: worker ${lp}, trainer ${trainer[i * batch.width + t]}`);
  }
}

describe('rollout workers (rl/remote)', { timeout: 120_000 }, () => {
  it('after a weight sync, 3 workers sample what the trainer samples (greedy and seeded), with its log-probabilities and the new version', async () => {
    await step(1);
    await assertSameAsLocal(settings({ topK: 1 }), 1, 3);
    await step(2);
    await assertSameAsLocal(settings(), 2, 3);
  });

  it('a request a worker cannot sample is answered with its reason, and the worker serves on', async () => {
    const long = [Array.from({ length: SPEC.context + 4 }, (_, i) => 1 + (i % 200))];
    await assert.rejects(sampleRemote(pool, policy.model, 2, long, settings()), /rollout worker \d \(127\.0\.0\.1:\d+, pid \d+\): could not sample: /);
    assert.equal(pool.live, 3);
    await assertSameAsLocal(settings(), 2, 3);
  });

  it('refuses a socket speaking garbage and a worker with another token, naming them, and serves on', async () => {
    const [host, port] = pool.address.split(':');
    await new Promise<void>((resolve) => {
      const s = net.connect(Number(port), host, () => s.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(4))));
      s.resume(); // flowing, so the server's FIN is read and the socket closes
      s.on('close', () => resolve());
      s.on('error', () => {});
    });
    const wrong = await runCli(['rollout-worker', '--connect', pool.address, '--model', join(dir, 'base'), '--tokenizer', 'bytes', '--connect-timeout', '10'], {
      env: { SMOLCLUSTER_TOKEN: 'another-token-0123456789abcdef' }, timeoutMs: 30_000,
    });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /token/i);
    // Authenticated, then a malformed message: dropped and named, never counted as a worker.
    const forger = await dialTrainer(host, Number(port), TOKEN, rolloutSignature(policy.model.arena().signature(), rolloutSettings({}, SPEC.vocabSize)), 5000);
    const gone = new Promise((resolve) => forger.once('closed', resolve));
    await sendMessage(forger, RolloutMessage.Hello, new Uint8Array([200, 0, 0, 0, 1, 2, 3]));
    await gone;
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(warnings.some((w) => /refused rollout worker \d \(127\.0\.0\.1:\d+\): rollout message from .*: a head of 200 bytes passes the 7-byte payload/.test(w)), warnings.join('\n'));
    assert.ok(warnings.filter((w) => /a rollout worker from 127\.0\.0\.1:\d+ was refused/.test(w)).length >= 2, warnings.join('\n'));
    await assertSameAsLocal(settings(), 2, 3);
  });

  it('a worker that stops answering is named at its deadline; one killed -9 is named at once; their prompts go to the others, then to the trainer', async () => {
    children[0].kill('SIGSTOP');
    const started = Date.now();
    await assertSameAsLocal(settings(), 2, 2);
    assert.ok(Date.now() - started >= 3500, 'the stopped worker was waited for until its deadline');
    assert.ok(warnings.some((w) => new RegExp(`rollout worker \\d \\(127\\.0\\.0\\.1:\\d+, pid ${children[0].pid}\\) dropped: rollouts timed out after \\d+ ms`).test(w)), warnings.join('\n'));
    children[0].kill('SIGCONT');

    await step(3);
    children[1].kill('SIGKILL');
    const killedAt = Date.now();
    await assertSameAsLocal(settings(), 3, 1);
    assert.ok(Date.now() - killedAt < 3500, 'a killed worker is dropped when its connection closes, not at its deadline');
    assert.ok(warnings.some((w) => new RegExp(`pid ${children[1].pid}\\) dropped`).test(w)), warnings.join('\n'));

    children[2].kill('SIGKILL');
    await assertSameAsLocal(settings(), 3, 0);
    assert.ok(warnings.some((w) => /no rollout worker is left; \d+ prompt\(s\) are sampled in the trainer's process/.test(w)), warnings.join('\n'));

    // A worker started by hand joins the running pool: sent the current weights (version 3) on connect, it takes the next request.
    const joiner = spawn(process.execPath, [CLI, 'rollout-worker', '--connect', pool.address, '--model', join(dir, 'base'), '--tokenizer', 'bytes', '--threads', '1'], {
      env: { ...process.env, SMOLCLUSTER_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(joiner);
    for (const until = Date.now() + 30_000; pool.live === 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 50));
    await assertSameAsLocal(settings(), 3, 1);
  });

  it('then a small step travels as a lossless delta onto the version the joined worker holds; a large one whole, the delta being the larger', async () => {
    const small = await step(4, 1e-5);
    assert.equal(small.sent, 'delta');
    assert.ok(small.delta_bytes! < 0.7 * small.whole_bytes, `${small.delta_bytes} bytes against ${small.whole_bytes}`);
    await assertSameAsLocal(settings(), 4, 1);
    const large = await step(5);
    assert.equal(large.sent, 'whole');
    assert.ok(large.delta_bytes! >= large.whole_bytes);
    await assertSameAsLocal(settings(), 5, 1);
  });
});

describe('a rollout worker that stops reading', { timeout: 60_000 }, () => {
  it('is dropped, named, when a weight update is not taken within the deadline: the sync does not hang', async () => {
    const dropped: string[] = [];
    const own = await openRolloutPool({ workers: 0, host: '127.0.0.1', port: 0, token: TOKEN, startMs: 10_000, requestMs: 1500 }, policy, {}, (m) => dropped.push(m));
    try {
      const [host, port] = own.address.split(':');
      const reader = await dialTrainer(host, Number(port), TOKEN, rolloutSignature(policy.model.arena().signature(), rolloutSettings({}, SPEC.vocabSize)), 5000);
      await sendMessage(reader, RolloutMessage.Hello, encodeMessage({ pid: process.pid }));
      for (const until = Date.now() + 10_000; own.live === 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 20));
      assert.equal(own.live, 1);
      reader.socket.pause(); // reads nothing more: the kernel's buffers fill, then the trainer's writes wait
      const started = Date.now();
      // Steps that move every weight: each update goes whole (a delta of unmoved weights is a few bytes, and would not fill them).
      const arena = policy.model.arena();
      for (let v = 1; own.live > 0 && v < 2000; v++) {
        arena.params.write((await arena.params.read()).map((x, i) => x + 0.05 * Math.sin(i + v)));
        await syncRolloutPool(own, policy, v);
      }
      assert.equal(own.live, 0);
      assert.ok(Date.now() - started < 30_000);
      assert.ok(dropped.some((w) => /rollout worker \d \(127\.0\.0\.1:\d+, pid \d+\) dropped: did not take a \d+-byte Weights message within 1500 ms/.test(w)), dropped.join('\n'));
      reader.destroy();
    } finally {
      await own.close();
    }
  });
});
