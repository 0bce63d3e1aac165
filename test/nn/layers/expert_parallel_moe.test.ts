/**
 * Expert parallelism (nn/layers/expert_parallel_moe.ts) over in-process ranks of a ProcessGroup (the
 * all-to-all of comm/collectives/alltoall.ts): P ranks, each with its own tokens and a 1/P share of
 * the experts, give the outputs and the gradients one process gives on all the tokens, within 1e-5
 * — the router's and the inputs' gradients on each rank, each expert's on the rank that owns it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { Dropout } from '../../../src/nn/layers/activation.js';
import { expertParallelForward } from '../../../src/nn/layers/expert_parallel_moe.js';
import { SparseMoeBlock } from '../../../src/nn/layers/sparse_moe.js';
import { groupExchanger } from '../../../src/parallel/sharding/group_exchanger.js';
import { backward, backwardAsync } from '../../../src/tensor/autograd.js';
import { add, mul } from '../../../src/tensor/ops/elementwise.js';
import { sum } from '../../../src/tensor/ops/reduce.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';

const [WIDTH, INNER, ROWS] = [8, 12, 6];
const MOE = { experts: 4, topK: 2, auxLossCoef: 0 };
const block = (): SparseMoeBlock => new SparseMoeBlock(WIDTH, INNER, MOE, new Rng(3), new Dropout(0, new Rng(4)));

function tokens(rank: number): Tensor {
  const rng = new Rng(100 + rank);
  const t = Tensor.from(Array.from({ length: ROWS * WIDTH }, () => rng.normal()), [1, ROWS, WIDTH]);
  t.requiresGrad = true;
  return t;
}

/** A loss that weighs every output differently, so each gradient is checked. */
function lossOf(y: Tensor, seed: number): Tensor {
  const rng = new Rng(seed);
  return sum(mul(y, Tensor.from(Array.from({ length: y.size }, () => rng.normal()), y.shape)));
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

describe('expert parallelism', () => {
  for (const P of [2, 4]) {
    it(`${P} ranks, ${4 / P} experts each, equal one process on all their tokens (outputs and gradients)`, async () => {
      // One process: every rank's tokens through the whole block, rank by rank (same routing per token).
      const whole = block();
      const inputs = Array.from({ length: P }, (_, r) => tokens(r));
      const wholeOut = inputs.map((x) => whole.forward(x));
      backward(wholeOut.map((y, r) => lossOf(y, r)).reduce((a, b) => add(a, b)));
      const transports = createInProcessTransports(P, { timeoutMs: 10_000 });
      const ranks = await Promise.all(transports.map(async (t, r) => {
        const local = block();
        const x = tokens(r);
        const y = await expertParallelForward(local, x, groupExchanger(new ProcessGroup(t, { timeoutMs: 10_000 })));
        await backwardAsync(lossOf(y, r));
        return { local, x, y };
      }));
      const owner = (name: string): number | null => {
        const m = /^experts\.(\d+)\./.exec(name);
        return m ? Math.floor(Number(m[1]) / (4 / P)) : null;
      };
      const wholeGrads = new Map(whole.namedParameters().map(([n, p]) => [n, p.gradValues() ?? new Float32Array(p.size)]));
      const gateGrad = new Float32Array(WIDTH * 4);
      ranks.forEach(({ local, x, y }, r) => {
        close(y.values(), wholeOut[r].values(), `rank ${r} output`);
        close(x.gradValues()!, inputs[r].gradValues()!, `rank ${r} input gradient`);
        for (const [name, p] of local.namedParameters()) {
          const g = p.gradValues() ?? new Float32Array(p.size);
          if (name === 'gate.weight') g.forEach((v, i) => (gateGrad[i] += v));
          else if (owner(name) === r) close(g, wholeGrads.get(name)!, `rank ${r} ${name}`);
          else assert.ok(g.every((v) => v === 0), `rank ${r} ran expert ${name} it does not own`);
        }
      });
      // The router is replicated: its gradients summed over the ranks are the whole batch's (as data parallelism sums them).
      close(gateGrad, wholeGrads.get('gate.weight')!, 'router gradient summed over ranks');
    });
  }
});
