import assert from 'node:assert/strict';
import { int8 } from '../../../src/comm/codecs/int8.js';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type StepRecord, type TrainOutcome, train } from '../../../src/train/loop/loop.js';
import {
  type AsyncPsOptions, AsyncPsServer, AsyncPsWorker, createAsyncPsStrategy, decodePush, encodePush,
} from '../../../src/train/strategies/async_ps.js';
import { Rng } from '../../../src/util/rng.js';
import { splitTrainTest } from '../../helpers/split.js';

const DATA = splitTrainTest(syntheticClassification({ seed: 5, samples: 900, inputShape: [1, 8, 8], numClasses: 4, noise: 2 }), 800);

function config(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...defaultConfig('mlp'), hidden: [16], batchSize: 16, maxSteps: 20, evalBatchSize: 100, lr: 0.05, ...over };
}

interface RankRun {
  steps: StepRecord[];
  outcome: TrainOutcome;
  strategy: ReturnType<typeof createAsyncPsStrategy>;
}

async function cluster(n: number, c: TrainConfig, opts: AsyncPsOptions, slow: (rank: number) => number = () => 0): Promise<RankRun[]> {
  const transports = createInProcessTransports(n, { timeoutMs: 10_000 });
  try {
    return await Promise.all(transports.map(async (t, rank) => {
      const strategy = createAsyncPsStrategy(new ProcessGroup(t, { timeoutMs: 10_000 }), { peerTimeoutMs: 10_000, ...opts });
      const steps: StepRecord[] = [];
      const delay = slow(rank);
      const outcome = await train(c, DATA, strategy, {
        onStep: (s) => {
          steps.push(s);
          if (delay > 0) {
            const until = Date.now() + delay;
            while (Date.now() < until) { /* a busy straggler: blocks the whole in-process cluster */ }
          }
        },
      });
      return { steps, outcome, strategy };
    }));
  } finally {
    await Promise.all(transports.map((t) => t.close()));
  }
}

describe('async-ps strategy (in-process)', () => {
  it('the server applies one push per step, (N-1)·ceil(T/K) steps, staleness-weighted; the model learns', async () => {
    const c = config({ maxSteps: 21 });
    const [server, w1, w2] = await cluster(3, c, { pushEvery: 4, stalenessBound: 2 });
    assert.equal(w1.steps.length, 21);
    assert.equal(w2.steps.length, 21);
    assert.equal(server.steps.length, 2 * Math.ceil(21 / 4));
    for (const s of server.steps) {
      const staleness = s.info?.staleness as number;
      assert.ok(staleness >= 0);
      assert.equal(s.info?.weight, 1 / (1 + staleness));
      assert.ok([1, 2].includes(s.info?.push_from as number));
    }
    assert.ok(server.steps.some((s) => (s.info?.staleness as number) > 0), 'two workers interleave: some pushes are stale');
    const srv = server.strategy as AsyncPsServer;
    assert.ok(srv.maxQueue <= 2, `the server's queue held ${srv.maxQueue} pushes: more than one per worker`);
    // Each worker's last push pulls the final weights.
    assert.ok((w1.strategy as AsyncPsWorker).pulls >= 1);
    assert.ok(server.outcome.finalEval!.accuracy! > 0.6, `accuracy ${server.outcome.finalEval!.accuracy}`);
  });

  it('staleness bound 0: every push is answered with the weights (the worker pulls each time)', async () => {
    const [, w1, w2] = await cluster(3, config({ maxSteps: 8 }), { pushEvery: 2, stalenessBound: 0 });
    // A worker is behind whenever the other pushed in between: with S = 0 it pulls then.
    assert.ok((w1.strategy as AsyncPsWorker).pulls + (w2.strategy as AsyncPsWorker).pulls >= 6);
  });

  it('int8 pushes with error feedback train like float pushes', async () => {
    const c = config({ maxSteps: 30 });
    const [f] = await cluster(3, c, { pushEvery: 2 });
    const [q] = await cluster(3, c, { pushEvery: 2, quantize: true });
    const fa = f.outcome.finalEval!.accuracy!;
    const qa = q.outcome.finalEval!.accuracy!;
    assert.ok(qa > 0.6 && Math.abs(qa - fa) < 0.1, `int8 ${qa} vs float ${fa}`);
  });

  it('a slow server never queues more than one push per worker', async () => {
    // The server's observer blocks 30 ms per step while two workers push every step.
    const [server] = await cluster(3, config({ maxSteps: 10 }), { pushEvery: 1 }, (rank) => (rank === 0 ? 30 : 0));
    assert.ok((server.strategy as AsyncPsServer).maxQueue <= 2);
    assert.equal(server.steps.length, 20);
  });
});

describe('int8 quantisation with error feedback', () => {
  it('the residual carries what rounding lost: the sum of dequantised pushes tracks the sum of inputs', () => {
    const n = 1000;
    const rng = new Rng(3);
    const residual = new Float32Array(n);
    const bytes = new Uint8Array(int8.encodedBytes(n));
    const sumIn = new Float64Array(n);
    const sumOut = new Float32Array(n);
    const decoded = new Float32Array(n);
    for (let round = 0; round < 50; round++) {
      const x = Float32Array.from({ length: n }, () => (rng.uniform() - 0.5) * (round % 3 === 0 ? 10 : 0.01));
      x.forEach((v, i) => (sumIn[i] += v));
      encodePush(x, residual, bytes);
      decodePush(bytes, 1, decoded);
      decoded.forEach((v, i) => (sumOut[i] += v));
    }
    // Without error feedback the small updates (0.01 next to scales of ~5/127) would vanish.
    let err = 0;
    for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(sumIn[i] - (sumOut[i] + residual[i])));
    assert.ok(err < 1e-3, `sum(in) - (sum(out) + residual) = ${err}`);
    assert.equal(bytes.length, 4 * Math.ceil(n / 256) + n);
  });

  it('pushes are the all-reduce codec\'s bytes (ties to even), weighted by staleness; a NaN poisons its block, not the push', () => {
    const n = 300;
    const delta = Float32Array.from({ length: n }, (_, i) => ((i % 7) - 3) * 0.25);
    delta[0] = 127; // scale 1: 2.5 and -0.5 round to even
    delta[1] = 2.5;
    delta[2] = -0.5;
    delta[260] = NaN;
    const expected = new Uint8Array(int8.encodedBytes(n));
    int8.encode(Float32Array.from(delta), expected);
    const bytes = new Uint8Array(int8.encodedBytes(n));
    encodePush(Float32Array.from(delta), new Float32Array(n), bytes);
    assert.deepEqual(bytes, expected);
    const out = new Float32Array(n);
    decodePush(bytes, 0.5, out);
    assert.deepEqual([out[0], out[1], out[2]], [63.5, 1, 0]);
    assert.ok(out.subarray(256).every(Number.isNaN), 'the block holding the NaN is NaN');
    assert.ok(out.subarray(0, 256).every(Number.isFinite), 'the other block is not');
  });
});
