import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type WandbApi, openWandb } from '../../src/metrics/wandb.js';
import { netrcPassword } from '../../src/metrics/wandb_key.js';
import { linesOf, runCliProcess, tempDir } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('wandb');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const notFound = (): Promise<never> => Promise.reject(Object.assign(new Error("Cannot find package '@wandb/sdk'"), { code: 'ERR_MODULE_NOT_FOUND' }));

describe('--wandb', () => {
  it('without the package or a key: one clear message, no sink', async () => {
    const cases: Array<[NodeJS.ProcessEnv, () => Promise<unknown>, RegExp]> = [
      [{}, notFound, /the @wandb\/sdk package is not installed \(npm install @wandb\/sdk\) and no W&B key/],
      [{ WANDB_API_KEY: 'k' }, notFound, /the @wandb\/sdk package is not installed/],
      [{}, async () => ({ default: fakeApi([]) }), /no W&B key \(WANDB_API_KEY, `wandb login`'s ~\/\.netrc\) nor WANDB_MODE=offline/],
    ];
    for (const [env, load, expected] of cases) {
      const said: string[] = [];
      const sink = await openWandb({ name: 'x', config: {}, env, load, warn: (l) => said.push(l), home: dir });
      assert.equal(sink, null);
      assert.equal(said.length, 1);
      assert.match(said[0], expected);
      assert.match(said[0], /training continues without W&B$/);
    }
  });

  it('the key `wandb login` stored in ~/.netrc (or $NETRC) is a key', async () => {
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    const api = async () => ({ default: fakeApi([]) });
    assert.equal(await openWandb({ name: 'x', config: {}, env: {}, load: api, warn: () => {}, home }), null);
    writeFileSync(join(home, '.netrc'), 'machine example.org login a password b\nmachine api.wandb.ai\n  login user\n  password 0123abcd\n');
    assert.ok(await openWandb({ name: 'x', config: {}, env: {}, load: api, warn: () => {}, home }));
    assert.equal(netrcPassword(readFileSync(join(home, '.netrc'), 'utf8'), 'api.wandb.ai'), '0123abcd');
    assert.equal(await openWandb({ name: 'x', config: {}, env: { WANDB_BASE_URL: 'https://wandb.example.com' }, load: api, warn: () => {}, home }), null);
  });

  it('with both: logs every step and evaluation, then finishes', async () => {
    const logged: Array<Record<string, number>> = [];
    const sink = await openWandb({ name: 'run', config: { lr: 1 }, env: { WANDB_MODE: 'offline' }, load: async () => ({ default: fakeApi(logged) }), worldSize: 2 });
    assert.ok(sink);
    sink.onStep({ step: 0, epoch: 0, rank: 0, loss: 2, samples: 8, lr: 0.1, computeMs: 3, commMs: 1, waitMs: 0, time: 1, gradNorm: 4, layerGradNorms: { 'fc1.weight': 3, 'fc1.bias': 0.5 } });
    sink.onEval({ step: 1, epoch: 0, loss: 1.5, accuracy: 0.5, samples: 10 });
    await sink.finish();
    assert.equal(logged[0].loss, 2);
    assert.equal(logged[0].grad_norm, 4);
    assert.deepEqual([logged[0]['grad_norm/fc1.weight'], logged[0]['grad_norm/fc1.bias']], [3, 0.5]);
    assert.equal(logged[0].samples_per_sec, 4000); // 8 samples × 2 ranks in 4 ms
    assert.deepEqual(logged[1], { step: 1, test_loss: 1.5, test_accuracy: 0.5 });
    assert.deepEqual(logged.at(-1), { finished: 1 });
  });

  it('a W&B failure is one line, once: an init error with a stack, a log that throws, a finish that rejects (issue 33 §7)', async () => {
    const stack = new Error('401 Unauthorized\n    at init (wandb.js:1:1)\n    at more (wandb.js:2:2)');
    const lines: string[] = [];
    const failingInit = { init: async () => { throw stack; }, log: () => {}, finish: async () => {} };
    assert.equal(await openWandb({ name: 'x', config: {}, env: { WANDB_MODE: 'offline' }, load: async () => failingInit, warn: (l) => lines.push(l) }), null);
    assert.deepEqual(lines, ['smolcluster: --wandb: W&B init failed (401 Unauthorized); training continues without W&B']);
    lines.length = 0;
    let finished = 0;
    const flaky = { init: async () => {}, log: () => { throw stack; }, finish: async () => { finished++; throw stack; } };
    const sink = await openWandb({ name: 'x', config: {}, env: { WANDB_MODE: 'offline' }, load: async () => flaky, warn: (l) => lines.push(l) });
    for (let step = 0; step < 3; step++) sink!.onStep({ step, epoch: 0, rank: 0, loss: 1, samples: 1, lr: 0.1, computeMs: 1, commMs: 0, waitMs: 0, time: 1 });
    await sink!.finish();
    assert.deepEqual(lines, ['smolcluster: --wandb: W&B log failed (401 Unauthorized); training continues without W&B']);
    assert.equal(finished, 0, 'a sink that failed is left alone');
  });

  it('train --wandb with no W&B key: one message on stderr, training completes', async () => {
    const home = join(dir, 'nokey');
    mkdirSync(home, { recursive: true });
    const r = await runCliProcess(['train', '--max-steps', '5', '--wandb', '--name', 'w', '--experiments-dir', dir, '--threads', '1'], {
      env: { WANDB_API_KEY: undefined, WANDB_MODE: undefined, NETRC: undefined, HOME: home }, timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stderr);
    const lines = linesOf(r.stderr).filter((l) => /wandb/i.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^smolcluster: --wandb: .*no W&B key .*; training continues without W&B$/);
    assert.match(r.stdout, /5 steps/);
  });
});

function fakeApi(logged: Array<Record<string, number>>): WandbApi {
  return {
    init: async () => undefined,
    log: (d) => void logged.push(d),
    finish: async () => void logged.push({ finished: 1 }),
  };
}
