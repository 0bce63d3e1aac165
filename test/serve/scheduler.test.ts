/** The batch scheduler's own limits: a request that waits past the queue timeout is refused (503), and close() refuses new ones. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../src/serve/api_error.js';
import { BatchScheduler } from '../../src/serve/scheduler.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { type GenerateResult, generate } from '../../src/generate/generate.js';
import { tinyServed } from './fixtures.js';

describe('BatchScheduler', { timeout: 30_000 }, () => {
  it('refuses a request that finds no free row within the queue timeout, and serves the one that had it', async () => {
    const { model } = tinyServed();
    const forward = model.forward.bind(model);
    model.forward = ((ids: Tensor, cache?: never) => {
      for (const end = Date.now() + 5; Date.now() < end;);
      return forward(ids, cache);
    }) as typeof model.forward;
    const scheduler = new BatchScheduler(model, { maxBatch: 1, queueTimeoutMs: 30 });
    const first = scheduler.submit({ promptIds: [1, 2], options: { maxNewTokens: 30 } });
    const second = scheduler.submit({ promptIds: [3], options: { maxNewTokens: 2 } });
    await assert.rejects(second, (e: ApiError) => e.status === 503 && e.code === 'server_busy' && /no free row within 0\.03 s/.test(e.message));
    assert.equal((await first).ids.length, 30);
    scheduler.close();
    await assert.rejects(scheduler.submit({ promptIds: [1], options: {} }), /shutting down/);
    assert.deepEqual([scheduler.active, scheduler.queued], [0, 0]);
  });

  it('requests waiting together with prompts of one length are prefilled in one forward, each getting its tokens alone', async () => {
    const { model } = tinyServed();
    const shapes: number[][] = [];
    const forward = model.forward.bind(model);
    model.forward = ((ids: Tensor, cache?: never) => {
      shapes.push([...ids.shape]);
      return forward(ids, cache);
    }) as typeof model.forward;
    const scheduler = new BatchScheduler(model, { maxBatch: 4, queueTimeoutMs: 10_000 });
    const prompts = [[1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]];
    // The first starts the loop and is prefilled at once; the other three wait and join together.
    const results = await Promise.all(prompts.map((p) => scheduler.submit({ promptIds: p, options: { maxNewTokens: 4 } })));
    assert.deepEqual(shapes.filter((s) => s[1] > 1), [[1, 2], [3, 3]]);
    model.forward = forward;
    for (const [i, p] of prompts.entries()) assert.deepEqual(results[i].ids, (await generate(model, p, { maxNewTokens: 4 })).ids, `prompt ${i}`);
    scheduler.close();
  });

  it('n choices take n rows and resolve together; more than --max-batch are refused; a prompt only scored takes no row', async () => {
    const { model } = tinyServed();
    const forward = model.forward.bind(model);
    model.forward = ((ids: Tensor, cache?: never) => {
      for (const end = Date.now() + 1; Date.now() < end;);
      return forward(ids, cache);
    }) as typeof model.forward;
    const scheduler = new BatchScheduler(model, { maxBatch: 2, queueTimeoutMs: 10_000 });
    await assert.rejects(scheduler.submitChoices({ promptIds: [1], choices: [{}, {}, {}] }), (e: ApiError) => e.status === 400 && e.param === 'n');
    // Once both choices decode (both rows busy), a request that only scores its prompt comes in.
    let scoring: Promise<GenerateResult> | undefined;
    let activeThen = 0;
    const pair = scheduler.submitChoices({
      promptIds: [1, 2], choices: [{ maxNewTokens: 20, temperature: 1, seed: 1 }, { maxNewTokens: 12, temperature: 1, seed: 2 }],
      onToken: (_, s, choice) => {
        if (choice !== 0 || s.ids.length !== 2) return;
        activeThen = scheduler.active;
        scoring = scheduler.submit({ promptIds: [5, 6, 7], options: { maxNewTokens: 0, promptLogprobs: 1 } });
      },
    });
    let pairDone = false;
    void pair.then(() => (pairDone = true));
    while (!scoring) await new Promise((resolve) => setImmediate(resolve));
    const scored = await scoring;
    assert.equal(activeThen, 2);
    assert.equal(pairDone, false, 'the prompt was scored while both rows were busy');
    assert.deepEqual([scored.ids, scored.promptLogprobs!.length, scored.promptLogprobs![0].top.length], [[], 2, 1]);
    const [a, b] = await pair;
    assert.deepEqual([a.ids.length, b.ids.length], [20, 12]);
    model.forward = forward;
    assert.deepEqual(a.ids, (await generate(model, [1, 2], { maxNewTokens: 20, temperature: 1, seed: 1 })).ids);
    assert.deepEqual(b.ids, (await generate(model, [1, 2], { maxNewTokens: 12, temperature: 1, seed: 2 })).ids);
    // A client gone frees every choice's row.
    const gone = new AbortController();
    const dropped = scheduler.submitChoices({ promptIds: [3], choices: [{ maxNewTokens: 40 }, { maxNewTokens: 40 }], signal: gone.signal, onToken: (_, s) => s.ids.length === 2 && gone.abort() });
    assert.deepEqual((await dropped).map((r) => r.stopReason), ['callback', 'callback']);
    assert.equal(scheduler.active, 0);
    scheduler.close();
  });

  it('refuses a --max-batch below 1', () => {
    assert.throws(() => new BatchScheduler(tinyServed().model, { maxBatch: 0, queueTimeoutMs: 10 }), /--max-batch must be an integer >= 1, got 0/);
  });
});
